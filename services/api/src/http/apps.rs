//! Apps (docs/api.md): create (with their `web` process, guid = app guid), list, get, update,
//! delete as a job, start/stop/restart, environment variables, the current droplet, and the
//! generated manifest. The rules live in [`crate::domain::apps`]; every state change reaches
//! the scheduler through [`crate::domain::desired`].

use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use wire::v3::app::{AppEnv, AppRelationships, CurrentDroplet, EnvironmentVariables};
use wire::v3::{self, Included, Lifecycle, LifecycleData, Link, Metadata, Page, ToOne};

use crate::access::{Caller, Need};
use crate::domain::apps::{self as rules, NewApp};
use crate::domain::env_groups;
use crate::domain::events::{self, Actor};
use crate::domain::feature_flags::{self as flags, Flag};
use crate::domain::staging;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::CfJson;
use crate::http::list::List;
use crate::http::util::{check_name, created, links, ts};
use crate::store::spaces::Space;
use crate::store::{self, Select};
use crate::AppState;

use crate::store::apps::App;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/apps", get(list).post(create))
        .route("/v3/apps/{guid}", get(show).patch(update).delete(remove))
        .route("/v3/apps/{guid}/actions/start", post(start))
        .route("/v3/apps/{guid}/actions/stop", post(stop))
        .route("/v3/apps/{guid}/actions/restart", post(restart))
        .route("/v3/apps/{guid}/actions/clear_buildpack_cache", post(clear_buildpack_cache))
        .route("/v3/apps/{guid}/environment_variables", get(env_vars).patch(patch_env_vars))
        .route("/v3/apps/{guid}/env", get(env))
        .route("/v3/apps/{guid}/permissions", get(permissions))
        .route("/v3/stacks/{name}/apps", get(stack_apps))
        .route(
            "/v3/apps/{guid}/relationships/current_droplet",
            get(current_droplet_rel).patch(set_current_droplet),
        )
        .route("/v3/apps/{guid}/droplets/current", get(current_droplet))
        .route("/v3/apps/{guid}/manifest", get(generated_manifest))
}

impl App {
    pub fn present(&self, s: &AppState) -> v3::App {
        let base = format!("{}/apps/{}", s.v3(), self.guid);
        let data = if self.lifecycle_type == "docker" {
            LifecycleData::default()
        } else {
            LifecycleData {
                buildpacks: Some(self.buildpacks.clone()),
                stack: Some(self.stack.clone()),
            }
        };
        v3::App {
            guid: self.guid.clone(),
            created_at: ts(self.created_at),
            updated_at: ts(self.updated_at),
            name: self.name.clone(),
            state: self.state,
            lifecycle: Lifecycle { kind: self.lifecycle_type.clone(), data },
            relationships: AppRelationships {
                space: ToOne::of(&self.space_guid),
                current_droplet: ToOne::of(&self.droplet_guid),
            },
            metadata: Metadata::default(),
            links: links([
                ("self", Link::new(base.clone())),
                ("space", Link::new(format!("{}/spaces/{}", s.v3(), self.space_guid))),
                ("processes", Link::new(format!("{base}/processes"))),
                ("packages", Link::new(format!("{base}/packages"))),
                ("environment_variables", Link::new(format!("{base}/environment_variables"))),
                ("current_droplet", Link::new(format!("{base}/droplets/current"))),
                ("droplets", Link::new(format!("{base}/droplets"))),
                ("tasks", Link::new(format!("{base}/tasks"))),
                ("start", Link::with_method(format!("{base}/actions/start"), "POST")),
                ("stop", Link::with_method(format!("{base}/actions/stop"), "POST")),
                ("revisions", Link::new(format!("{base}/revisions"))),
                ("deployed_revisions", Link::new(format!("{base}/revisions/deployed"))),
                ("features", Link::new(format!("{base}/features"))),
            ]),
        }
    }
}

/// The app and its space, if the caller may read it (404 "App" otherwise) and has `need`.
pub async fn require_with_space(
    s: &AppState,
    c: &Caller,
    guid: &str,
    need: Need,
) -> ApiResult<(App, Space)> {
    let app = store::apps::find(&s.db.pool, guid).await?.ok_or(ApiError::NotFound("App"))?;
    let space = crate::store::spaces::find(&s.db.pool, &app.space_guid)
        .await?
        .ok_or(ApiError::NotFound("App"))?;
    c.require_space(&space.guid, &space.org_guid, "App", need).await?;
    Ok((app, space))
}

pub async fn require(s: &AppState, c: &Caller, guid: &str, need: Need) -> ApiResult<App> {
    Ok(require_with_space(s, c, guid, need).await?.0)
}

fn lifecycle_of(v: &Value) -> ApiResult<(String, Vec<String>, String)> {
    let Some(l) = v.get("lifecycle").filter(|l| !l.is_null()) else {
        return Ok((String::new(), vec![], String::new()));
    };
    let kind = l.get("type").and_then(Value::as_str).unwrap_or("buildpack").to_owned();
    if kind != "buildpack" && kind != "docker" {
        return Err(ApiError::Unprocessable(
            "Lifecycle type must be 'buildpack' or 'docker'".into(),
        ));
    }
    let bps = match l.pointer("/data/buildpacks") {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        Some(_) => {
            return Err(ApiError::Unprocessable(
                "Lifecycle buildpacks must be an array of names".into(),
            ))
        }
    };
    let stack = l.pointer("/data/stack").and_then(Value::as_str).unwrap_or_default().to_owned();
    Ok((kind, bps, stack))
}

async fn create(
    State(s): State<AppState>,
    c: Caller,
    CfJson(req): CfJson<Value>,
) -> ApiResult<Response> {
    let name = req.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
    let space_guid =
        req.pointer("/relationships/space/data/guid").and_then(Value::as_str).unwrap_or_default();
    let space = crate::http::spaces::require(&s, &c, space_guid, Need::Developer).await.map_err(
        |e| match e {
            ApiError::NotFound(_) => ApiError::Unprocessable(
                "Invalid space. Ensure that the space exists and you have access to it.".into(),
            ),
            e => e,
        },
    )?;
    let (lifecycle_type, buildpacks, stack) = lifecycle_of(&req)?;
    let env = rules::env_of(req.get("environment_variables"))?;
    crate::domain::staging::check_names(&s, &buildpacks).await?;
    check_name(&name, "App")?;
    let app = rules::create_app(
        &s,
        &space,
        NewApp { name, lifecycle_type, buildpacks, stack, env },
        &Actor::of(&c),
    )
    .await?;
    Ok(created(app.present(&s)))
}

const FILTERS: [&str; 8] = [
    "guids",
    "names",
    "space_guids",
    "organization_guids",
    "stacks",
    "lifecycle_type",
    "label_selector",
    "include",
];

async fn list(
    State(s): State<AppState>,
    c: Caller,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Page<v3::App>>> {
    let list = List::parse(&s, q.as_deref(), "apps", "apps", &FILTERS, &["name", "state"])?;
    list_with(&s, &c, list).await
}

/// `GET /v3/stacks/:name/apps`: the apps on that stack the caller may see.
async fn stack_apps(
    State(s): State<AppState>,
    c: Caller,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Page<v3::App>>> {
    if !s.config.stacks.contains(&name) {
        return Err(ApiError::NotFound("Stack"));
    }
    let path = format!("stacks/{name}/apps");
    let list = List::parse(&s, q.as_deref(), &path, "apps", &FILTERS, &["name", "state"])?
        .set("stacks", vec![name]);
    list_with(&s, &c, list).await
}

async fn list_with(s: &AppState, c: &Caller, list: List) -> ApiResult<Json<Page<v3::App>>> {
    let list = list
        .filter("guids", "apps.guid")
        .filter("space_guids", "apps.space_guid")
        .filter("stacks", "apps.stack")
        .filter_lower("names", "apps.name_key")
        .filter("lifecycle_type", "apps.lifecycle_type")
        .filter_with("organization_guids", in_orgs)
        .visible("apps.space_guid", &c.visible_spaces().await?);
    let apps = list.fetch(async |sel, w| sel.page_of(&s.db, w, App::from_row).await).await?;
    let apps = apps.include(async |apps, inc| include_spaces(s, apps, inc).await).await?;
    Ok(Json(apps.present(|a| a.present(s))))
}

/// Only apps of spaces in one of `orgs`.
fn in_orgs(sel: Select, orgs: &[String]) -> Select {
    let mut sel = sel.join("JOIN spaces sp ON sp.guid = apps.space_guid");
    sel.any("sp.org_guid", orgs);
    sel
}

/// `include=space` and `include=space.organization`: the apps' spaces and their orgs, each
/// once.
async fn include_spaces(s: &AppState, apps: &[App], inc: &[String]) -> ApiResult<Option<Included>> {
    let mut spaces: Vec<Space> = Vec::new();
    for a in apps {
        if !spaces.iter().any(|sp| sp.guid == a.space_guid) {
            if let Some(sp) = crate::store::spaces::find(&s.db.pool, &a.space_guid).await? {
                spaces.push(sp);
            }
        }
    }
    let mut included = Included::default();
    if inc.iter().any(|i| i == "space" || i == "space.organization") {
        included.spaces = Some(spaces.iter().map(|sp| sp.present(s)).collect());
    }
    if inc.iter().any(|i| i == "space.organization") {
        let mut orgs: Vec<v3::Organization> = Vec::new();
        for sp in &spaces {
            if let Some(o) = crate::store::orgs::find(&s.db.pool, &sp.org_guid).await? {
                if !orgs.iter().any(|v| v.guid == o.guid) {
                    orgs.push(o.present(s));
                }
            }
        }
        included.organizations = Some(orgs);
    }
    Ok(Some(included))
}

async fn show(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<v3::App>> {
    Ok(Json(require(&s, &c, &guid, Need::Read).await?.present(&s)))
}

async fn update(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    CfJson(req): CfJson<Value>,
) -> ApiResult<Json<v3::App>> {
    let (mut app, space) = require_with_space(&s, &c, &guid, Need::Developer).await?;
    if let Some(n) = req.get("name").and_then(Value::as_str) {
        check_name(n, "App")?;
        app.name = n.to_owned();
    }
    let (kind, bps, stack) = lifecycle_of(&req)?;
    if req.get("lifecycle").is_some_and(|l| !l.is_null()) {
        if !kind.is_empty() && kind != app.lifecycle_type {
            return Err(ApiError::Unprocessable("Lifecycle type cannot be changed".into()));
        }
        if req.pointer("/lifecycle/data/buildpacks").is_some() {
            crate::domain::staging::check_names(&s, &bps).await?;
            app.buildpacks = bps;
        }
        if !stack.is_empty() {
            app.stack = stack;
        }
    }
    rules::save(&s, &mut app).await?;
    let t = space.target(&app.guid, "app", &app.name);
    events::record(&s, "audit.app.update", &Actor::of(&c), &t, json!({"request": req})).await;
    Ok(Json(app.present(&s)))
}

async fn remove(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Response> {
    let (app, _) = require_with_space(&s, &c, &guid, Need::Developer).await?;
    let actor = Actor::of(&c);
    let s2 = s.clone();
    let work = async move { crate::domain::deletion::delete_app(&s2, &app.guid, &actor).await };
    let job = crate::domain::jobs::spawn(&s, "app.delete", "apps", &guid, work).await?;
    Ok(crate::http::jobs::accepted(&s, &job))
}

/// `POST /v3/apps/:guid/actions/clear_buildpack_cache`: a job that has the stagers drop the
/// app's buildpack cache, so its next staging starts from nothing.
async fn clear_buildpack_cache(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Response> {
    let (app, _) = require_with_space(&s, &c, &guid, Need::Developer).await?;
    let s2 = s.clone();
    let work = async move { staging::clear_buildpack_cache(&s2, Some(&app.guid)).await };
    let job =
        crate::domain::jobs::spawn(&s, "app.clear_buildpack_cache", "apps", &guid, work).await?;
    Ok(crate::http::jobs::accepted(&s, &job))
}

async fn action(
    s: AppState,
    c: Caller,
    guid: String,
    state: v3::AppState,
    restart: bool,
    event: &str,
) -> ApiResult<Json<v3::App>> {
    let (mut app, space) = require_with_space(&s, &c, &guid, Need::AppManager).await?;
    rules::set_state(&s, &mut app, state, restart).await?;
    let t = space.target(&app.guid, "app", &app.name);
    events::record(&s, event, &Actor::of(&c), &t, json!({})).await;
    Ok(Json(app.present(&s)))
}

async fn start(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<v3::App>> {
    action(s, c, guid, v3::AppState::Started, false, "audit.app.start").await
}

async fn stop(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<v3::App>> {
    action(s, c, guid, v3::AppState::Stopped, false, "audit.app.stop").await
}

async fn restart(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<v3::App>> {
    action(s, c, guid, v3::AppState::Started, true, "audit.app.restart").await
}

fn env_body(s: &AppState, app: &App) -> EnvironmentVariables {
    EnvironmentVariables {
        var: app.env.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect(),
        links: links([
            ("self", Link::new(format!("{}/apps/{}/environment_variables", s.v3(), app.guid))),
            ("app", Link::new(format!("{}/apps/{}", s.v3(), app.guid))),
        ]),
    }
}

async fn env_vars(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<EnvironmentVariables>> {
    let (app, space) = require_with_space(&s, &c, &guid, Need::Read).await?;
    if !c.secrets_readable(&space.guid).await?
        && c.require_space(&space.guid, &space.org_guid, "App", Need::AppManager).await.is_err()
    {
        return Err(ApiError::NotAuthorized);
    }
    flags::require(&s, &c, Flag::SpaceDeveloperEnvVarVisibility).await?;
    Ok(Json(env_body(&s, &app)))
}

async fn patch_env_vars(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    CfJson(req): CfJson<Value>,
) -> ApiResult<Json<EnvironmentVariables>> {
    let (mut app, space) = require_with_space(&s, &c, &guid, Need::AppManager).await?;
    let Some(Value::Object(vars)) = req.get("var") else {
        return Err(ApiError::Unprocessable("Var must be an object".into()));
    };
    rules::patch_env(&s, &mut app, vars).await?;
    let t = space.target(&app.guid, "app", &app.name);
    let keys: Vec<&String> = vars.keys().collect();
    events::record(
        &s,
        "audit.app.update",
        &Actor::of(&c),
        &t,
        json!({"request": {"environment_variables": keys}}),
    )
    .await;
    Ok(Json(env_body(&s, &app)))
}

async fn permissions(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<wire::v3::app::AppPermissions>> {
    let (_, space) = require_with_space(&s, &c, &guid, Need::Read).await?;
    Ok(Json(wire::v3::app::AppPermissions {
        read_basic_data: true,
        read_sensitive_data: c.secrets_readable(&space.guid).await?,
    }))
}

async fn env(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<AppEnv>> {
    let (app, space) = require_with_space(&s, &c, &guid, Need::Read).await?;
    if !c.secrets_readable(&space.guid).await? {
        return Err(ApiError::NotAuthorized);
    }
    flags::require(&s, &c, Flag::EnvVarVisibility).await?;
    flags::require(&s, &c, Flag::SpaceDeveloperEnvVarVisibility).await?;
    let web = store::processes::find_by_type(&s.db.pool, &app.guid, "web").await?;
    let vcap = crate::domain::desired::vcap_application(&s, &app, web.as_ref()).await?;
    let services = crate::domain::services::vcap_services(&s, &app.guid).await?;
    let strings = |m: &std::collections::BTreeMap<String, String>| {
        m.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect()
    };
    let group = async |g| -> ApiResult<_> { Ok(strings(&env_groups::get(&s, g).await?.0)) };
    Ok(Json(AppEnv {
        staging_env_json: group(env_groups::Group::Staging).await?,
        running_env_json: group(env_groups::Group::Running).await?,
        environment_variables: strings(&app.env),
        system_env_json: [("VCAP_SERVICES".to_owned(), services)].into_iter().collect(),
        application_env_json: [("VCAP_APPLICATION".to_owned(), vcap)].into_iter().collect(),
    }))
}

fn droplet_rel(s: &AppState, app: &App) -> CurrentDroplet {
    let base = format!("{}/apps/{}", s.v3(), app.guid);
    CurrentDroplet {
        data: ToOne::of(&app.droplet_guid).data,
        links: links([
            ("self", Link::new(format!("{base}/relationships/current_droplet"))),
            ("related", Link::new(format!("{base}/droplets/current"))),
        ]),
    }
}

async fn current_droplet_rel(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<CurrentDroplet>> {
    let app = require(&s, &c, &guid, Need::Read).await?;
    Ok(Json(droplet_rel(&s, &app)))
}

async fn set_current_droplet(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    CfJson(req): CfJson<Value>,
) -> ApiResult<Json<CurrentDroplet>> {
    let (mut app, space) = require_with_space(&s, &c, &guid, Need::AppManager).await?;
    let dg = req.pointer("/data/guid").and_then(Value::as_str).unwrap_or_default();
    let droplet = crate::store::droplets::find(&s.db.pool, dg).await?.filter(|d| d.app_guid == app.guid && d.state == wire::v3::DropletState::Staged).ok_or_else(|| {
        ApiError::Unprocessable("Unable to assign current droplet. Ensure the droplet exists and belongs to this app.".into())
    })?;
    rules::set_droplet(&s, &mut app, &droplet.guid, &droplet.process_types).await?;
    let t = space.target(&app.guid, "app", &app.name);
    events::record(
        &s,
        "audit.app.droplet.mapped",
        &Actor::of(&c),
        &t,
        json!({"request": {"droplet_guid": droplet.guid}}),
    )
    .await;
    Ok(Json(droplet_rel(&s, &app)))
}

async fn current_droplet(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<wire::v3::Droplet>> {
    let app = require(&s, &c, &guid, Need::Read).await?;
    let d = crate::store::droplets::find(&s.db.pool, &app.droplet_guid)
        .await?
        .ok_or(ApiError::NotFound("Droplet"))?;
    Ok(Json(d.present(&s)))
}

async fn generated_manifest(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Response> {
    let (app, space) = require_with_space(&s, &c, &guid, Need::Read).await?;
    if !c.secrets_readable(&space.guid).await? {
        return Err(ApiError::NotAuthorized);
    }
    let yaml = crate::http::manifest::generate(&s, &app).await?;
    Ok(([(header::CONTENT_TYPE, "application/x-yaml")], yaml).into_response())
}
