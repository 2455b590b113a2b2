//! Manifests (contracts/ccapi.md §3.2): `apply_manifest` (what the cf CLI pushes through),
//! `manifest_diff`, and the generated manifest of an app. Validation and find-or-create of
//! each app happen before the 202; processes, routes and env are applied in the job.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use manifest::{AppManifest, Manifest, ManifestError, ProcessSpec};
use rand::seq::SliceRandom as _;
use serde_json::json;

use crate::access::{Caller, Need};
use crate::error::{ApiError, ApiResult};
use crate::http::apps::{App, NewApp};
use crate::http::events::{self, Actor};
use crate::http::spaces::Space;
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
        let app = match crate::http::apps::find_by_name(&s, &space.guid, &am.name).await? {
            Some(a) => a,
            None => {
                let buildpacks = am.requested_buildpacks().unwrap_or_default();
                crate::http::buildpacks::check_names(&s, &buildpacks).await?;
                let new = NewApp {
                    name: am.name.clone(),
                    lifecycle_type: am.lifecycle_type().to_owned(),
                    buildpacks,
                    stack: am.stack.clone().unwrap_or_default(),
                    env: BTreeMap::new(),
                };
                crate::http::apps::create_app(&s, &space, new, &actor).await?
            }
        };
        apps.push((app, am.clone()));
    }
    let (s2, space_guid) = (s.clone(), space.guid.clone());
    let work = async move {
        let mut outcome = Ok(());
        for (app, am) in apps {
            if let Err(e) = apply_app(&s2, &space, app, &am, &actor).await {
                let detail = format!("For application '{}': {}", am.name, e);
                outcome = Err(match e {
                    ApiError::Internal(d) => ApiError::Internal(format!("{detail} ({d})")),
                    _ => ApiError::Unprocessable(detail),
                });
                break;
            }
        }
        outcome
    };
    let job =
        crate::domain::jobs::spawn(&s, "space.apply_manifest", "spaces", &space_guid, work).await?;
    Ok(crate::http::jobs::accepted(&s, &job))
}

/// Everything apply_manifest does for one app after the 202.
async fn apply_app(
    s: &AppState,
    space: &Space,
    mut app: App,
    am: &AppManifest,
    actor: &Actor,
) -> ApiResult<()> {
    let mut changed_app = false;
    if let Some(bps) = am.requested_buildpacks() {
        crate::http::buildpacks::check_names(s, &bps).await?;
        app.buildpacks = bps;
        changed_app = true;
    }
    if let Some(st) = &am.stack {
        if !s.config.stacks.contains(st) {
            return Err(ApiError::Unprocessable(format!("Stack '{st}' does not exist")));
        }
        app.stack = st.clone();
        changed_app = true;
    }
    let env = am.env_strings();
    if !env.is_empty() {
        app.env.extend(env);
        changed_app = true;
    }
    if changed_app {
        crate::http::apps::save(s, &mut app).await?;
    }
    for spec in am.process_specs() {
        apply_process(s, space, &app, &spec).await?;
    }
    apply_routes(s, space, &app, am, actor).await?;
    let t = space.target(&app.guid, "app", &app.name);
    events::record(
        s,
        "audit.app.apply_manifest",
        actor,
        &t,
        json!({"manifest": serde_json::to_value(am).unwrap_or_default()}),
    )
    .await;
    crate::http::desired::sync_app_logged(s, &app.guid).await;
    Ok(())
}

async fn apply_process(
    s: &AppState,
    space: &Space,
    app: &App,
    spec: &ProcessSpec,
) -> ApiResult<()> {
    let mut p = match crate::http::processes::by_type(s, &app.guid, &spec.process_type).await? {
        Some(p) => p,
        None => crate::http::processes::create(s, app, &spec.process_type, None).await?,
    };
    if let Some(cmd) = &spec.command {
        p.command = cmd.clone().filter(|c| !c.trim().is_empty());
    }
    let h = &spec.health;
    let mut hv = json!({"data": {}});
    if let Some(t) = &h.health_check_type {
        hv["type"] = json!(t);
    }
    if let Some(e) = &h.health_check_http_endpoint {
        hv["data"]["endpoint"] = json!(e);
    }
    if let Some(t) = h.health_check_invocation_timeout {
        hv["data"]["invocation_timeout"] = json!(t);
    }
    if let Some(t) = h.health_check_interval {
        hv["data"]["interval"] = json!(t);
    }
    if let Some(t) = h.timeout {
        hv["data"]["timeout"] = json!(t);
    }
    crate::http::processes::apply_health(&mut p.health, &hv)?;
    crate::http::processes::save(s, &mut p).await?;
    let mem = spec.memory_mb.and_then(|m| i64::try_from(m).ok());
    let disk = spec.disk_mb.and_then(|d| i64::try_from(d).ok());
    if spec.instances.is_some() || mem.is_some() || disk.is_some() || spec.log_rate_bps.is_some() {
        let to = crate::http::processes::ScaleTo {
            instances: spec.instances,
            memory: mem,
            disk,
            log_rate: spec.log_rate_bps,
        };
        crate::http::processes::apply_scale(s, &mut p, app, &space.org_guid, to).await?;
    }
    Ok(())
}

async fn app_has_routes(s: &AppState, app: &str) -> ApiResult<bool> {
    let r = sqlx::query("SELECT guid FROM route_destinations WHERE app_guid = $1 LIMIT 1")
        .bind(app)
        .fetch_optional(&s.db.pool)
        .await?;
    Ok(r.is_some())
}

async fn apply_routes(
    s: &AppState,
    space: &Space,
    app: &App,
    am: &AppManifest,
    actor: &Actor,
) -> ApiResult<()> {
    if am.no_route == Some(true) {
        sqlx::query("DELETE FROM route_destinations WHERE app_guid = $1")
            .bind(&app.guid)
            .execute(&s.db.pool)
            .await?;
        return Ok(());
    }
    if let Some(routes) = &am.routes {
        for entry in routes {
            let spec = manifest::parse_route(&entry.route)
                .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
            if spec.port.is_some() {
                return Err(ApiError::Unprocessable(format!(
                    "Route '{}': TCP routes are not offered by this platform",
                    entry.route
                )));
            }
            let mut found = None;
            for (host, domain) in spec.candidates() {
                if let Some(d) = crate::http::domains::by_name(s, &domain).await? {
                    found = Some((host, d));
                    break;
                }
            }
            let (host, domain) = found.ok_or_else(|| {
                ApiError::Unprocessable(format!("No domains exist for route {}", entry.route))
            })?;
            let route =
                crate::http::routes::find_or_create(s, space, &domain, &host, &spec.path, actor)
                    .await?;
            let protocol = entry.protocol.clone().unwrap_or_else(|| "http1".into());
            crate::http::routes::map(s, &route, &app.guid, "web", &protocol).await?;
        }
        return Ok(());
    }
    if app_has_routes(s, &app.guid).await? {
        return Ok(());
    }
    let random = am.random_route == Some(true);
    if !random && am.default_route != Some(true) {
        return Ok(());
    }
    let domain = crate::http::domains::default_for(s, &space.org_guid).await?.ok_or_else(|| {
        ApiError::Unprocessable(
            "No default domain exists; an admin must create a shared domain.".into(),
        )
    })?;
    let base = app.name.to_ascii_lowercase();
    if !random && !base.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(ApiError::Unprocessable(format!(
            "Failed to create default route: the app name '{}' is not a valid host name; set 'routes' or 'random-route'",
            app.name
        )));
    }
    let host = if random { random_host(&base) } else { base };
    let route = crate::http::routes::find_or_create(s, space, &domain, &host, "", actor).await?;
    crate::http::routes::map(s, &route, &app.guid, "web", "http1").await
}

fn random_host(name: &str) -> String {
    const ADJ: [&str; 12] = [
        "brave", "calm", "daring", "eager", "fancy", "gentle", "happy", "jolly", "kind", "lively",
        "proud", "silly",
    ];
    const NOUN: [&str; 12] = [
        "badger", "camel", "dolphin", "eagle", "ferret", "gecko", "heron", "ibex", "jaguar",
        "koala", "lemur", "otter",
    ];
    let mut rng = rand::thread_rng();
    let letters: String = (0..2)
        .map(|_| *b"abcdefghijklmnopqrstuvwxyz".choose(&mut rng).unwrap_or(&b'a') as char)
        .collect();
    let clean: String = name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
    format!(
        "{}-{}-{}-{letters}",
        if clean.is_empty() { "app" } else { &clean },
        ADJ.choose(&mut rng).unwrap_or(&"calm"),
        NOUN.choose(&mut rng).unwrap_or(&"otter")
    )
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
        if let Some(app) = crate::http::apps::find_by_name(&s, &space.guid, &am.name).await? {
            current.applications.push(app_manifest(&s, &app).await?);
        }
    }
    let ops = manifest::diff(&current, &desired);
    Ok((StatusCode::CREATED, Json(json!({ "diff": ops }))).into_response())
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
    if let Some(web) = crate::http::processes::by_type(s, &app.guid, "web").await? {
        for r in crate::http::routes::lrp_routes(s, &app.guid, &web.kind).await? {
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
    for p in crate::http::processes::of_app(s, &app.guid).await? {
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
