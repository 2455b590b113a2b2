//! Processes (docs/api.md): one per app and process type (`web` shares the app's guid); scale,
//! update, stats from the scheduler's actual instances, restart of one instance. `version`
//! changes whenever instances must be recreated (start, restart, new memory or disk); the
//! scheduler's process guid is `<guid>-<version>`. The rules live in [`crate::domain::apps`].

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use wire::v3::process::{
    HealthCheck, HealthCheckData, ProcessRelationships, ProcessStatsList, ReadinessCheck,
};
use wire::v3::{self, Link, Metadata, Page, ToOne};

use crate::access::{Caller, Need};
use crate::domain::apps::{self as rules, ScaleTo};
use crate::domain::events::{self, Actor};
use crate::domain::feature_flags::{self as flags, Flag};
use crate::error::{ApiError, ApiResult};
use crate::http::extract::CfJson;
use crate::http::list::{List, Query};
use crate::http::util::{links, ts};
use crate::store::apps::App;
use crate::store::processes::Process;
use crate::store::spaces::Space;
use crate::store::{self, Select};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/processes", get(list))
        .route("/v3/processes/{guid}", get(show).patch(update))
        .route("/v3/processes/{guid}/actions/scale", post(scale))
        .route("/v3/processes/{guid}/stats", get(stats))
        .route("/v3/processes/{guid}/sidecars", get(sidecars))
        .route("/v3/processes/{guid}/instances/{index}", delete(restart_instance))
        .route("/v3/apps/{guid}/processes", get(app_processes))
        .route("/v3/apps/{guid}/processes/{ptype}", get(app_process))
        .route("/v3/apps/{guid}/processes/{ptype}/actions/scale", post(app_scale))
        .route("/v3/apps/{guid}/processes/{ptype}/stats", get(app_stats))
        .route("/v3/apps/{guid}/processes/{ptype}/instances/{index}", delete(app_restart_instance))
}

impl Process {
    pub fn present(&self, s: &AppState, space: &str, droplet_cmd: Option<&str>) -> v3::Process {
        let base = format!("{}/processes/{}", s.v3(), self.guid);
        let h = &self.health;
        v3::Process {
            guid: self.guid.clone(),
            created_at: ts(self.created_at),
            updated_at: ts(self.updated_at),
            version: self.version.clone(),
            kind: self.kind.clone(),
            command: self.command.as_deref().or(droplet_cmd).map(str::to_owned),
            user: Some("vcap".into()),
            instances: self.instances,
            memory_in_mb: self.memory_mb,
            disk_in_mb: self.disk_mb,
            log_rate_limit_in_bytes_per_second: Some(self.log_rate),
            health_check: HealthCheck {
                kind: h.kind.clone(),
                data: HealthCheckData {
                    timeout: h.timeout,
                    invocation_timeout: h.invocation_timeout,
                    interval: h.interval,
                    endpoint: h.endpoint.clone(),
                },
            },
            readiness_health_check: ReadinessCheck {
                kind: "process".into(),
                data: Default::default(),
            },
            relationships: ProcessRelationships {
                app: ToOne::of(&self.app_guid),
                revision: ToOne::of(""),
            },
            metadata: Metadata::default(),
            links: links([
                ("self", Link::new(base.clone())),
                ("scale", Link::with_method(format!("{base}/actions/scale"), "POST")),
                ("app", Link::new(format!("{}/apps/{}", s.v3(), self.app_guid))),
                ("space", Link::new(format!("{}/spaces/{space}", s.v3()))),
                ("stats", Link::new(format!("{base}/stats"))),
                ("process_instances", Link::new(format!("{base}/process_instances"))),
            ]),
        }
    }
}

/// The process, its app and space, if the caller may read them.
async fn require(
    s: &AppState,
    c: &Caller,
    guid: &str,
    need: Need,
) -> ApiResult<(Process, App, Space)> {
    let p = store::processes::find(&s.db.pool, guid).await?.ok_or(ApiError::NotFound("Process"))?;
    let (app, space) = crate::http::apps::require_with_space(s, c, &p.app_guid, need)
        .await
        .map_err(|e| match e {
            ApiError::NotFound(_) => ApiError::NotFound("Process"),
            e => e,
        })?;
    Ok((p, app, space))
}

async fn require_typed(
    s: &AppState,
    c: &Caller,
    app: &str,
    kind: &str,
    need: Need,
) -> ApiResult<(Process, App, Space)> {
    let (a, space) = crate::http::apps::require_with_space(s, c, app, need).await?;
    let p = store::processes::find_by_type(&s.db.pool, &a.guid, kind)
        .await?
        .ok_or(ApiError::NotFound("Process"))?;
    Ok((p, a, space))
}

async fn present(s: &AppState, p: &Process, app: &App) -> ApiResult<v3::Process> {
    let cmd = crate::store::droplets::find(&s.db.pool, &app.droplet_guid)
        .await?
        .and_then(|d| d.process_types.get(&p.kind).cloned());
    Ok(p.present(s, &app.space_guid, cmd.as_deref()))
}

async fn list(
    State(s): State<AppState>,
    c: Caller,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Page<v3::Process>>> {
    const FILTERS: [&str; 6] =
        ["guids", "types", "app_guids", "space_guids", "organization_guids", "label_selector"];
    let list = List::parse(&s, q.as_deref(), "processes", "processes", &FILTERS, &[])?;
    list_with(&s, &c, list).await
}

/// A page of processes, each with its app (a process whose app is gone is left out).
async fn list_with(s: &AppState, c: &Caller, list: List) -> ApiResult<Json<Page<v3::Process>>> {
    let list = list
        .join("JOIN apps a ON a.guid = processes.app_guid")
        .filter("guids", "processes.guid")
        .filter("types", "processes.type")
        .filter("app_guids", "processes.app_guid")
        .filter("space_guids", "a.space_guid")
        .filter_with("organization_guids", in_orgs)
        .visible("a.space_guid", &c.visible_spaces().await?);
    let processes = list
        .fetch(async |sel, w| {
            let (total, processes) = sel.page_of(&s.db, w, Process::from_row).await?;
            let mut found = Vec::new();
            for p in processes {
                if let Some(app) = store::apps::find(&s.db.pool, &p.app_guid).await? {
                    found.push((p, app));
                }
            }
            Ok((total, found))
        })
        .await?;
    Ok(Json(processes.present_async(|(p, app)| async move { present(s, &p, &app).await }).await?))
}

/// Only processes of apps in spaces of one of `orgs`.
fn in_orgs(sel: Select, orgs: &[String]) -> Select {
    let mut sel = sel.join("JOIN spaces sp ON sp.guid = a.space_guid");
    sel.any("sp.org_guid", orgs);
    sel
}

async fn app_processes(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Page<v3::Process>>> {
    let app = crate::http::apps::require(&s, &c, &guid, Need::Read).await?;
    let path = format!("apps/{guid}/processes");
    let list = List::parse(
        &s,
        q.as_deref(),
        &path,
        "processes",
        &["guids", "types", "label_selector"],
        &[],
    )?
    .set("app_guids", vec![app.guid.clone()]);
    list_with(&s, &c, list).await
}

async fn show(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<v3::Process>> {
    let (p, app, _) = require(&s, &c, &guid, Need::Read).await?;
    Ok(Json(present(&s, &p, &app).await?))
}

async fn app_process(
    State(s): State<AppState>,
    c: Caller,
    Path((guid, ptype)): Path<(String, String)>,
) -> ApiResult<Json<v3::Process>> {
    let (p, app, _) = require_typed(&s, &c, &guid, &ptype, Need::Read).await?;
    Ok(Json(present(&s, &p, &app).await?))
}

async fn update(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    CfJson(req): CfJson<Value>,
) -> ApiResult<Json<v3::Process>> {
    let (mut p, app, space) = require(&s, &c, &guid, Need::AppManager).await?;
    match req.get("command") {
        None => {}
        Some(Value::Null) => p.command = None,
        Some(Value::String(cmd)) if !cmd.trim().is_empty() => p.command = Some(cmd.clone()),
        Some(_) => {
            return Err(ApiError::Unprocessable(
                "Command must be a non-empty string or null".into(),
            ))
        }
    }
    if let Some(h) = req.get("health_check") {
        rules::apply_health(&mut p.health, h)?;
    }
    rules::save_process(&s, &mut p).await?;
    let t = space.target(&app.guid, "app", &app.name);
    events::record(
        &s,
        "audit.app.process.update",
        &Actor::of(&c),
        &t,
        json!({"process_guid": p.guid, "request": req}),
    )
    .await;
    Ok(Json(present(&s, &p, &app).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Scale {
    instances: Option<i64>,
    memory_in_mb: Option<i64>,
    disk_in_mb: Option<i64>,
    log_rate_limit_in_bytes_per_second: Option<i64>,
}

async fn do_scale(
    s: AppState,
    c: Caller,
    mut p: Process,
    app: App,
    space: Space,
    req: Scale,
) -> ApiResult<Response> {
    let to = ScaleTo {
        instances: req.instances,
        memory: req.memory_in_mb,
        disk: req.disk_in_mb,
        log_rate: req.log_rate_limit_in_bytes_per_second,
    };
    rules::apply_scale(&s, &mut p, &app, &space.org_guid, to).await?;
    let t = space.target(&app.guid, "app", &app.name);
    let data = json!({"process_guid": p.guid, "process_type": p.kind, "request": {
        "instances": req.instances, "memory_in_mb": req.memory_in_mb, "disk_in_mb": req.disk_in_mb}});
    events::record(&s, "audit.app.process.scale", &Actor::of(&c), &t, data).await;
    Ok((StatusCode::ACCEPTED, Json(present(&s, &p, &app).await?)).into_response())
}

async fn scale(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    CfJson(req): CfJson<Scale>,
) -> ApiResult<Response> {
    let (p, app, space) = require(&s, &c, &guid, Need::AppManager).await?;
    flags::require(&s, &c, Flag::AppScaling).await?;
    do_scale(s, c, p, app, space, req).await
}

async fn app_scale(
    State(s): State<AppState>,
    c: Caller,
    Path((guid, ptype)): Path<(String, String)>,
    CfJson(req): CfJson<Scale>,
) -> ApiResult<Response> {
    let (p, app, space) = require_typed(&s, &c, &guid, &ptype, Need::AppManager).await?;
    flags::require(&s, &c, Flag::AppScaling).await?;
    do_scale(s, c, p, app, space, req).await
}

async fn stats_body(s: &AppState, p: &Process, app: &App) -> ApiResult<Json<ProcessStatsList>> {
    let actual = if app.state == v3::AppState::Started {
        crate::domain::desired::actual(s, &p.lrp_guid()).await?
    } else {
        vec![]
    };
    Ok(Json(ProcessStatsList { resources: crate::http::stats::entries(s, p, app, &actual).await }))
}

async fn stats(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<ProcessStatsList>> {
    let (p, app, _) = require(&s, &c, &guid, Need::Read).await?;
    stats_body(&s, &p, &app).await
}

async fn app_stats(
    State(s): State<AppState>,
    c: Caller,
    Path((guid, ptype)): Path<(String, String)>,
) -> ApiResult<Json<ProcessStatsList>> {
    let (p, app, _) = require_typed(&s, &c, &guid, &ptype, Need::Read).await?;
    stats_body(&s, &p, &app).await
}

async fn sidecars(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<Page<v3::Sidecar>>> {
    require(&s, &c, &guid, Need::Read).await?;
    let q = Query::parse(&s, None, &format!("processes/{guid}/sidecars"), &[], &[])?;
    Ok(Json(q.page(0, vec![])))
}

async fn restart_instance(
    State(s): State<AppState>,
    c: Caller,
    Path((guid, index)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let (p, app, space) = require(&s, &c, &guid, Need::AppManager).await?;
    terminate_instance(&s, &c, &p, &app, &space, &index).await
}

/// The form of `cf restart-app-instance`: the app's process by type.
async fn app_restart_instance(
    State(s): State<AppState>,
    c: Caller,
    Path((guid, ptype, index)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let (p, app, space) = require_typed(&s, &c, &guid, &ptype, Need::AppManager).await?;
    terminate_instance(&s, &c, &p, &app, &space, &index).await
}

/// Stop instance `index` of `p`; the scheduler starts it again.
async fn terminate_instance(
    s: &AppState,
    c: &Caller,
    p: &Process,
    app: &App,
    space: &Space,
    index: &str,
) -> ApiResult<StatusCode> {
    let idx: u32 = index.parse().map_err(|_| ApiError::NotFound("Instance"))?;
    if i64::from(idx) >= p.instances || app.state != v3::AppState::Started {
        return Err(ApiError::NotFound("Instance"));
    }
    crate::domain::desired::restart_instance(s, &p.lrp_guid(), idx).await?;
    let t = space.target(&app.guid, "app", &app.name);
    events::record(
        s,
        "audit.app.process.terminate_instance",
        &Actor::of(c),
        &t,
        json!({"process_guid": p.guid, "process_index": idx}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
