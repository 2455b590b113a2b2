//! Builds (docs/api.md): `POST /v3/builds` stages a package through
//! [`crate::domain::staging`], which records the STAGING build and publishes its staging
//! request; the stager's report arrives through the internal API ([`complete`]). Lists and
//! shows builds.

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use wire::staging::StagingResult;
use wire::v3::build::BuildRelationships;
use wire::v3::{self, BuildState, Guid, Lifecycle, Link, Metadata, Page, ToOne};

use crate::access::{Caller, Need};
use crate::domain::events::{self, Actor};
use crate::domain::staging;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::CfJson;
use crate::http::list::List;
use crate::http::util::{created, links, ts};
use crate::store;
use crate::store::builds::Build;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/builds", get(list).post(create))
        .route("/v3/builds/{guid}", get(show).patch(update))
        .route("/v3/apps/{guid}/builds", get(app_builds))
}

impl Build {
    pub fn present(&self, s: &AppState) -> v3::Build {
        let staged = self.state == BuildState::Staged;
        let mut links = links([
            ("self", Link::new(format!("{}/builds/{}", s.v3(), self.guid))),
            ("app", Link::new(format!("{}/apps/{}", s.v3(), self.app_guid))),
        ]);
        if staged {
            let href = format!("{}/droplets/{}", s.v3(), self.droplet_guid);
            links.insert("droplet".into(), Link::new(href));
        }
        v3::Build {
            guid: self.guid.clone(),
            created_at: ts(self.created_at),
            updated_at: ts(self.updated_at),
            state: self.state,
            staging_memory_in_mb: self.memory_mb,
            staging_disk_in_mb: self.disk_mb,
            staging_log_rate_limit_bytes_per_second: Some(-1),
            error: (!self.error.is_empty()).then(|| self.error.clone()),
            lifecycle: if self.stack == wire::lrp::DOCKER_STACK {
                Lifecycle { kind: "docker".into(), data: Default::default() }
            } else {
                Lifecycle::buildpack(self.buildpacks.clone(), self.stack.clone())
            },
            package: Guid::new(&self.package_guid),
            droplet: staged.then(|| Guid::new(&self.droplet_guid)),
            created_by: self.created_by.clone(),
            relationships: BuildRelationships { app: ToOne::of(&self.app_guid) },
            metadata: Metadata::default(),
            links,
        }
    }
}

async fn create(
    State(s): State<AppState>,
    c: Caller,
    CfJson(req): CfJson<Value>,
) -> ApiResult<Response> {
    let pkg = req.pointer("/package/guid").and_then(Value::as_str).unwrap_or_default();
    let (p, app, space) = crate::http::packages::require(&s, &c, pkg, Need::AppManager)
        .await
        .map_err(|e| match e {
            ApiError::NotFound(_) => ApiError::Unprocessable(
                "Unable to use package. Ensure that the package exists and you have access to it."
                    .into(),
            ),
            e => e,
        })?;
    staging::check_stageable(&p)?;
    let docker = p.kind == "docker";
    if docker {
        crate::domain::feature_flags::require_on(
            &s,
            crate::domain::feature_flags::Flag::DiegoDocker,
        )
        .await?;
    }
    let mut buildpacks = app.buildpacks.clone();
    let mut stack = app.stack.clone();
    if let Some(bps) = req.pointer("/lifecycle/data/buildpacks").and_then(Value::as_array) {
        buildpacks = bps.iter().filter_map(Value::as_str).map(str::to_owned).collect();
    }
    if let Some(st) = req.pointer("/lifecycle/data/stack").and_then(Value::as_str) {
        stack = st.to_owned();
    }
    if docker {
        (buildpacks, stack) = (Vec::new(), wire::lrp::DOCKER_STACK.to_owned());
    }
    let int = |name: &str, default: i64| -> ApiResult<i64> {
        match req.get(name) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v.as_i64().filter(|n| *n > 0).ok_or_else(|| {
                ApiError::Unprocessable(format!("{name} must be a positive integer"))
            }),
        }
    };
    let memory_mb = int("staging_memory_in_mb", s.config.staging_memory_mb)?;
    let disk_mb = int("staging_disk_in_mb", s.config.staging_disk_mb)?;
    let new = staging::NewBuild {
        app_guid: app.guid.clone(),
        package_guid: p.guid.clone(),
        buildpacks,
        stack,
        memory_mb,
        disk_mb,
        created_by: json!({"guid": c.guid(), "name": c.name(), "email": c.email()}),
        env: crate::domain::staging_requests::env(&s, &app).await?,
        docker,
    };
    let staged = staging::create_build(&s, new).await?;
    let t = space.target(&app.guid, "app", &app.name);
    events::record(
        &s,
        "audit.app.build.create",
        &Actor::of(&c),
        &t,
        json!({"build_guid": staged.build.guid, "package_guid": p.guid}),
    )
    .await;
    let build = if docker {
        crate::domain::docker::stage(&s, staged.build.clone(), p.clone());
        staged.build
    } else {
        staging::publish(&s, &staged).await?
    };
    Ok(created(build.present(&s)))
}

/// The stager's report; a droplet it created is recorded as the app's audit event.
pub async fn complete(s: &AppState, guid: &str, result: &StagingResult) -> ApiResult<()> {
    let Some(b) = staging::complete(s, guid, result).await? else { return Ok(()) };
    if let Some(app) = crate::store::apps::find(&s.db.pool, &b.app_guid).await? {
        if let Some(space) = crate::store::spaces::find(&s.db.pool, &app.space_guid).await? {
            let t = space.target(&app.guid, "app", &app.name);
            events::record(
                s,
                "audit.app.droplet.create",
                &Actor::system(),
                &t,
                json!({"droplet_guid": b.droplet_guid}),
            )
            .await;
        }
    }
    Ok(())
}

async fn list(
    State(s): State<AppState>,
    c: Caller,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Page<v3::Build>>> {
    const FILTERS: [&str; 4] = ["states", "app_guids", "package_guids", "label_selector"];
    list_with(&s, &c, List::parse(&s, q.as_deref(), "builds", "builds", &FILTERS, &[])?).await
}

async fn list_with(s: &AppState, c: &Caller, list: List) -> ApiResult<Json<Page<v3::Build>>> {
    let list = list
        .join("JOIN apps a ON a.guid = builds.app_guid")
        .filter("states", "builds.state")
        .filter("app_guids", "builds.app_guid")
        .filter("package_guids", "builds.package_guid")
        .visible("a.space_guid", &c.visible_spaces().await?);
    let builds = list.fetch(async |sel, w| sel.page_of(&s.db, w, Build::from_row).await).await?;
    Ok(Json(builds.present(|b| b.present(s))))
}

async fn app_builds(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Page<v3::Build>>> {
    let app = crate::http::apps::require(&s, &c, &guid, Need::Read).await?;
    let path = format!("apps/{guid}/builds");
    let list = List::parse(&s, q.as_deref(), &path, "builds", &["states", "label_selector"], &[])?
        .set("app_guids", vec![app.guid]);
    list_with(&s, &c, list).await
}

/// The build if the caller has `need` on its app (else 404 or 403).
async fn require(s: &AppState, c: &Caller, guid: &str, need: Need) -> ApiResult<Build> {
    let b = store::builds::find(&s.db.pool, guid).await?.ok_or(ApiError::NotFound("Build"))?;
    crate::http::apps::require(s, c, &b.app_guid, need).await.map_err(|e| match e {
        ApiError::NotFound(_) => ApiError::NotFound("Build"),
        e => e,
    })?;
    Ok(b)
}

async fn show(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<v3::Build>> {
    Ok(Json(require(&s, &c, &guid, Need::Read).await?.present(&s)))
}

/// Labels and annotations only.
async fn update(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    CfJson(req): CfJson<Value>,
) -> ApiResult<Json<v3::Build>> {
    crate::http::metadata::only_metadata(&req)?;
    Ok(Json(require(&s, &c, &guid, Need::Developer).await?.present(&s)))
}
