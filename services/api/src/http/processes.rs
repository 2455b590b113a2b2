//! Processes (contracts/ccapi.md §4.9, §3.4): one per app and process type (`web` shares the
//! app's guid); scale, update, stats from the scheduler's actual instances, restart of one
//! instance. `version` changes whenever instances must be recreated (start, restart, new
//! memory or disk); the scheduler's process guid is `<guid>-<version>`.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::any::AnyRow;
use sqlx::Row as _;

use crate::access::{Caller, Need};
use crate::error::{ApiError, ApiResult};
use crate::http::apps::App;
use crate::http::events::{self, Actor};
use crate::http::extract::body;
use crate::http::paging::ListQuery;
use crate::http::util::{link, link_method, metadata, to_one, ts};
use crate::store::Select;
use crate::store::{new_guid, now_ms};
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
}

/// Health check settings as stored and shown (`health_check.data`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Health {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub timeout: Option<i64>,
    #[serde(default)]
    pub invocation_timeout: Option<i64>,
    #[serde(default)]
    pub interval: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct Process {
    pub guid: String,
    pub app_guid: String,
    pub kind: String,
    pub command: Option<String>,
    pub instances: i64,
    pub memory_mb: i64,
    pub disk_mb: i64,
    pub log_rate: i64,
    pub health: Health,
    pub version: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Process {
    fn from_row(r: &AnyRow) -> ApiResult<Self> {
        let hc: String = r.try_get("health_check")?;
        Ok(Self {
            guid: r.try_get("guid")?,
            app_guid: r.try_get("app_guid")?,
            kind: r.try_get("type")?,
            command: r.try_get("command")?,
            instances: r.try_get("instances")?,
            memory_mb: r.try_get("memory_mb")?,
            disk_mb: r.try_get("disk_mb")?,
            log_rate: r.try_get("log_rate")?,
            health: serde_json::from_str(&hc).unwrap_or_default(),
            version: r.try_get("version")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }

    /// The scheduler's process guid for the current version.
    pub fn lrp_guid(&self) -> String {
        format!("{}-{}", self.guid, self.version)
    }

    pub fn present(&self, s: &AppState, space: &str, droplet_cmd: Option<&str>) -> Value {
        let base = format!("{}/processes/{}", s.v3(), self.guid);
        let h = &self.health;
        json!({
            "guid": self.guid, "created_at": ts(self.created_at), "updated_at": ts(self.updated_at),
            "version": self.version, "type": self.kind,
            "command": self.command.as_deref().or(droplet_cmd),
            "user": "vcap",
            "instances": self.instances, "memory_in_mb": self.memory_mb, "disk_in_mb": self.disk_mb,
            "log_rate_limit_in_bytes_per_second": self.log_rate,
            "health_check": {"type": h.kind, "data": {
                "timeout": h.timeout, "invocation_timeout": h.invocation_timeout,
                "interval": h.interval, "endpoint": h.endpoint,
            }},
            "readiness_health_check": {"type": "process", "data": {"invocation_timeout": null, "interval": null, "endpoint": null}},
            "relationships": {"app": to_one(&self.app_guid), "revision": to_one("")},
            "metadata": metadata(),
            "links": {
                "self": link(base.clone()),
                "scale": link_method(format!("{base}/actions/scale"), "POST"),
                "app": link(format!("{}/apps/{}", s.v3(), self.app_guid)),
                "space": link(format!("{}/spaces/{space}", s.v3())),
                "stats": link(format!("{base}/stats")),
                "process_instances": link(format!("{base}/process_instances")),
            },
        })
    }
}

fn default_health(kind: &str) -> Health {
    Health { kind: if kind == "web" { "port" } else { "process" }.into(), ..Health::default() }
}

/// Create a process of `kind` for the app (web: guid = app guid, 1 instance; others 0).
pub async fn create(
    s: &AppState,
    app: &App,
    kind: &str,
    command: Option<&str>,
) -> ApiResult<Process> {
    let now = now_ms();
    let p = Process {
        guid: if kind == "web" { app.guid.clone() } else { new_guid() },
        app_guid: app.guid.clone(),
        kind: kind.into(),
        command: command.map(str::to_owned),
        instances: i64::from(kind == "web"),
        memory_mb: s.config.default_memory_mb,
        disk_mb: s.config.default_disk_mb,
        log_rate: -1,
        health: default_health(kind),
        version: new_guid(),
        created_at: now,
        updated_at: now,
    };
    sqlx::query(
        "INSERT INTO processes (guid, app_guid, type, command, instances, memory_mb, disk_mb, log_rate, health_check, \
         version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
    )
    .bind(&p.guid)
    .bind(&p.app_guid)
    .bind(&p.kind)
    .bind(p.command.clone())
    .bind(p.instances)
    .bind(p.memory_mb)
    .bind(p.disk_mb)
    .bind(p.log_rate)
    .bind(json!(p.health).to_string())
    .bind(&p.version)
    .bind(now)
    .execute(&s.db.pool)
    .await?;
    Ok(p)
}

pub async fn save(s: &AppState, p: &mut Process) -> ApiResult<()> {
    p.updated_at = now_ms();
    sqlx::query(
        "UPDATE processes SET command = $1, instances = $2, memory_mb = $3, disk_mb = $4, log_rate = $5, \
         health_check = $6, version = $7, updated_at = $8 WHERE guid = $9",
    )
    .bind(p.command.clone())
    .bind(p.instances)
    .bind(p.memory_mb)
    .bind(p.disk_mb)
    .bind(p.log_rate)
    .bind(json!(p.health).to_string())
    .bind(&p.version)
    .bind(p.updated_at)
    .bind(&p.guid)
    .execute(&s.db.pool)
    .await?;
    Ok(())
}

pub async fn of_app(s: &AppState, app: &str) -> ApiResult<Vec<Process>> {
    let rows = sqlx::query("SELECT * FROM processes WHERE app_guid = $1 ORDER BY created_at, guid")
        .bind(app)
        .fetch_all(&s.db.pool)
        .await?;
    rows.iter().map(Process::from_row).collect()
}

pub async fn by_type(s: &AppState, app: &str, kind: &str) -> ApiResult<Option<Process>> {
    let row = sqlx::query("SELECT * FROM processes WHERE app_guid = $1 AND type = $2")
        .bind(app)
        .bind(kind)
        .fetch_optional(&s.db.pool)
        .await?;
    row.as_ref().map(Process::from_row).transpose()
}

/// Every process of the app gets a new version: its instances are replaced.
pub async fn new_versions(s: &AppState, app: &App) -> ApiResult<()> {
    for mut p in of_app(s, &app.guid).await? {
        p.version = new_guid();
        save(s, &mut p).await?;
    }
    Ok(())
}

/// A droplet became current: create a process for each of its types that is missing.
pub async fn ensure_for_droplet(
    s: &AppState,
    app: &App,
    types: &BTreeMap<String, String>,
) -> ApiResult<()> {
    for kind in types.keys() {
        if by_type(s, &app.guid, kind).await?.is_none() {
            create(s, app, kind, None).await?;
        }
    }
    Ok(())
}

/// The process, its app and space, if the caller may read them.
async fn require(
    s: &AppState,
    c: &Caller,
    guid: &str,
    need: Need,
) -> ApiResult<(Process, App, crate::http::spaces::Space)> {
    let row = sqlx::query("SELECT * FROM processes WHERE guid = $1")
        .bind(guid)
        .fetch_optional(&s.db.pool)
        .await?;
    let p =
        row.as_ref().map(Process::from_row).transpose()?.ok_or(ApiError::NotFound("Process"))?;
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
) -> ApiResult<(Process, App, crate::http::spaces::Space)> {
    let (a, space) = crate::http::apps::require_with_space(s, c, app, need).await?;
    let p = by_type(s, &a.guid, kind).await?.ok_or(ApiError::NotFound("Process"))?;
    Ok((p, a, space))
}

async fn present(s: &AppState, p: &Process, app: &App) -> ApiResult<Value> {
    let cmd = crate::http::droplets::find(s, &app.droplet_guid)
        .await?
        .and_then(|d| d.process_types.get(&p.kind).cloned());
    Ok(p.present(s, &app.space_guid, cmd.as_deref()))
}

async fn list(
    State(s): State<AppState>,
    c: Caller,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = ListQuery::parse(
        q.as_deref(),
        &["guids", "types", "app_guids", "space_guids", "organization_guids", "label_selector"],
        &[],
    )?;
    list_with(&s, &c, q, format!("{}/processes", s.v3())).await
}

async fn list_with(s: &AppState, c: &Caller, q: ListQuery, base: String) -> ApiResult<Json<Value>> {
    let mut sel = Select::from("processes").join("JOIN apps a ON a.guid = processes.app_guid");
    crate::http::metadata::select(&mut sel, &q, "processes.guid")?;
    sel.filter(q.filter("guids"), "processes.guid")
        .filter(q.filter("types"), "processes.type")
        .filter(q.filter("app_guids"), "processes.app_guid")
        .filter(q.filter("space_guids"), "a.space_guid");
    if let Some(orgs) = q.filter("organization_guids") {
        let orgs = orgs.to_vec();
        sel = sel.join("JOIN spaces sp ON sp.guid = a.space_guid");
        sel.any("sp.org_guid", &orgs);
    }
    sel.visible("a.space_guid", &c.visible_spaces().await?);
    let (total, rows) = sel.page(&s.db, &q.window()).await?;
    let mut items = Vec::new();
    for r in &rows {
        let p = Process::from_row(r)?;
        if let Some(app) = crate::http::apps::find(s, &p.app_guid).await? {
            items.push(present(s, &p, &app).await?);
        }
    }
    Ok(Json(q.envelope(&base, total, items)))
}

async fn app_processes(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let app = crate::http::apps::require(&s, &c, &guid, Need::Read).await?;
    let mut q = ListQuery::parse(q.as_deref(), &["guids", "types", "label_selector"], &[])?;
    q.filters.insert("app_guids".into(), vec![app.guid.clone()]);
    list_with(&s, &c, q, format!("{}/apps/{guid}/processes", s.v3())).await
}

async fn show(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<Value>> {
    let (p, app, _) = require(&s, &c, &guid, Need::Read).await?;
    Ok(Json(present(&s, &p, &app).await?))
}

async fn app_process(
    State(s): State<AppState>,
    c: Caller,
    Path((guid, ptype)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (p, app, _) = require_typed(&s, &c, &guid, &ptype, Need::Read).await?;
    Ok(Json(present(&s, &p, &app).await?))
}

/// Parse and apply a `health_check` object onto `h`.
pub fn apply_health(h: &mut Health, v: &Value) -> ApiResult<()> {
    if let Some(t) = v.get("type").and_then(Value::as_str) {
        let t = if t == "none" { "process" } else { t };
        if !["port", "process", "http"].contains(&t) {
            return Err(ApiError::Unprocessable(
                "Health check type must be \"port\", \"process\", or \"http\"".into(),
            ));
        }
        h.kind = t.into();
    }
    let data = v.get("data").cloned().unwrap_or(Value::Null);
    let int = |name: &str, max: i64| -> ApiResult<Option<Option<i64>>> {
        match data.get(name) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(x) => match x.as_i64() {
                Some(n) if (1..=max).contains(&n) => Ok(Some(Some(n))),
                _ => Err(ApiError::Unprocessable(format!(
                    "Health check {name} must be an integer between 1 and {max}"
                ))),
            },
        }
    };
    if let Some(t) = int("timeout", 180)? {
        h.timeout = t;
    }
    if let Some(t) = int("invocation_timeout", 60)? {
        h.invocation_timeout = t;
    }
    if let Some(t) = int("interval", 3600)? {
        h.interval = t;
    }
    match data.get("endpoint") {
        Some(Value::String(e)) if e.starts_with('/') => h.endpoint = Some(e.clone()),
        Some(Value::Null) | None => {}
        Some(_) => {
            return Err(ApiError::Unprocessable(
                "Health check endpoint must be a path starting with '/'".into(),
            ))
        }
    }
    if h.kind == "http" && h.endpoint.is_none() {
        h.endpoint = Some("/".into());
    }
    if h.kind != "http" {
        h.endpoint = None;
    }
    Ok(())
}

async fn update(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    raw: Bytes,
) -> ApiResult<Json<Value>> {
    let (mut p, app, space) = require(&s, &c, &guid, Need::AppManager).await?;
    let req: Value = body(&raw)?;
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
        apply_health(&mut p.health, h)?;
    }
    save(&s, &mut p).await?;
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

/// Instances, memory, disk and log rate from a scale request; memory or disk changes mean new
/// instances (a new version), instance counts do not.
/// A scale request: each field `None` keeps the current value.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScaleTo {
    pub instances: Option<i64>,
    pub memory: Option<i64>,
    pub disk: Option<i64>,
    pub log_rate: Option<i64>,
}

pub async fn apply_scale(
    s: &AppState,
    p: &mut Process,
    app: &App,
    org: &str,
    to: ScaleTo,
) -> ApiResult<()> {
    let ScaleTo { instances, memory, disk, log_rate } = to;
    if instances.is_some_and(|i| !(0..=2000).contains(&i)) {
        return Err(ApiError::Unprocessable("Instances must be between 0 and 2000".into()));
    }
    if memory.is_some_and(|m| !(1..=s.config.max_memory_mb).contains(&m)) {
        return Err(ApiError::Unprocessable(format!(
            "Memory in mb must be between 1 and {}",
            s.config.max_memory_mb
        )));
    }
    if disk.is_some_and(|d| !(1..=s.config.max_disk_mb).contains(&d)) {
        return Err(ApiError::Unprocessable(format!(
            "Disk in mb must be between 1 and {}",
            s.config.max_disk_mb
        )));
    }
    if log_rate.is_some_and(|l| l < -1) {
        return Err(ApiError::Unprocessable(
            "Log rate limit must be -1 (unlimited) or more".into(),
        ));
    }
    let new_i = instances.unwrap_or(p.instances);
    let new_m = memory.unwrap_or(p.memory_mb);
    if app.state == "STARTED" {
        crate::http::quotas::check_memory(s, org, &app.space_guid, &p.guid, new_i, new_m).await?;
    }
    let recreate = memory.is_some_and(|m| m != p.memory_mb)
        || disk.is_some_and(|d| d != p.disk_mb)
        || log_rate.is_some_and(|l| l != p.log_rate);
    p.instances = new_i;
    p.memory_mb = new_m;
    p.disk_mb = disk.unwrap_or(p.disk_mb);
    p.log_rate = log_rate.unwrap_or(p.log_rate);
    if recreate {
        p.version = new_guid();
    }
    save(s, p).await?;
    crate::http::desired::sync_app(s, &app.guid).await
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
    space: crate::http::spaces::Space,
    raw: Bytes,
) -> ApiResult<Response> {
    let req: Scale = body(&raw)?;
    let to = ScaleTo {
        instances: req.instances,
        memory: req.memory_in_mb,
        disk: req.disk_in_mb,
        log_rate: req.log_rate_limit_in_bytes_per_second,
    };
    apply_scale(&s, &mut p, &app, &space.org_guid, to).await?;
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
    raw: Bytes,
) -> ApiResult<Response> {
    let (p, app, space) = require(&s, &c, &guid, Need::AppManager).await?;
    do_scale(s, c, p, app, space, raw).await
}

async fn app_scale(
    State(s): State<AppState>,
    c: Caller,
    Path((guid, ptype)): Path<(String, String)>,
    raw: Bytes,
) -> ApiResult<Response> {
    let (p, app, space) = require_typed(&s, &c, &guid, &ptype, Need::AppManager).await?;
    do_scale(s, c, p, app, space, raw).await
}

async fn stats_body(s: &AppState, p: &Process, app: &App) -> ApiResult<Json<Value>> {
    let actual = if app.state == "STARTED" {
        crate::http::desired::actual(s, &p.lrp_guid()).await?
    } else {
        vec![]
    };
    Ok(Json(json!({ "resources": crate::http::stats::entries(s, p, app, &actual).await })))
}

async fn stats(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<Value>> {
    let (p, app, _) = require(&s, &c, &guid, Need::Read).await?;
    stats_body(&s, &p, &app).await
}

async fn app_stats(
    State(s): State<AppState>,
    c: Caller,
    Path((guid, ptype)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (p, app, _) = require_typed(&s, &c, &guid, &ptype, Need::Read).await?;
    stats_body(&s, &p, &app).await
}

async fn sidecars(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<Value>> {
    require(&s, &c, &guid, Need::Read).await?;
    let q = ListQuery::parse(None, &[], &[])?;
    Ok(Json(q.envelope(&format!("{}/processes/{guid}/sidecars", s.v3()), 0, vec![])))
}

async fn restart_instance(
    State(s): State<AppState>,
    c: Caller,
    Path((guid, index)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let (p, app, space) = require(&s, &c, &guid, Need::AppManager).await?;
    let idx: u32 = index.parse().map_err(|_| ApiError::NotFound("Instance"))?;
    if i64::from(idx) >= p.instances || app.state != "STARTED" {
        return Err(ApiError::NotFound("Instance"));
    }
    crate::http::desired::restart_instance(&s, &p.lrp_guid(), idx).await?;
    let t = space.target(&app.guid, "app", &app.name);
    events::record(
        &s,
        "audit.app.process.terminate_instance",
        &Actor::of(&c),
        &t,
        json!({"process_guid": p.guid, "process_index": idx}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
