//! Builds (contracts/ccapi.md §4.7, DESIGN.md step 2): `POST /v3/builds` records a STAGING
//! build and publishes a staging request; the stager reports through the internal API
//! ([`complete`]); a build whose stager vanished or overran the staging timeout is failed by
//! [`run_sweeper`] — a build never stays STAGING forever.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bus::BusExt as _;
use serde_json::{json, Value};
use sqlx::any::AnyRow;
use sqlx::Row as _;
use wire::staging::{StagingOutcome, StagingRequest, StagingResult};

use crate::access::{Caller, Need};
use crate::error::{ApiError, ApiResult};
use crate::http::apps::App;
use crate::domain::events::{self, Actor};
use crate::http::extract::body;
use crate::http::paging::ListQuery;
use crate::http::util::{link, metadata, to_one, ts};
use crate::store::Select;
use crate::store::{new_guid, now_ms};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/builds", get(list).post(create))
        .route("/v3/builds/{guid}", get(show))
        .route("/v3/apps/{guid}/builds", get(app_builds))
}

#[derive(Debug, Clone)]
pub struct Build {
    pub guid: String,
    pub app_guid: String,
    pub package_guid: String,
    pub droplet_guid: String,
    pub state: String,
    pub error: String,
    pub buildpacks: Vec<String>,
    pub stack: String,
    pub memory_mb: i64,
    pub disk_mb: i64,
    pub created_by: Value,
    pub deadline: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Build {
    fn from_row(r: &AnyRow) -> ApiResult<Self> {
        let bps: String = r.try_get("buildpacks")?;
        let by: String = r.try_get("created_by")?;
        Ok(Self {
            guid: r.try_get("guid")?,
            app_guid: r.try_get("app_guid")?,
            package_guid: r.try_get("package_guid")?,
            droplet_guid: r.try_get("droplet_guid")?,
            state: r.try_get("state")?,
            error: r.try_get("error")?,
            buildpacks: serde_json::from_str(&bps).unwrap_or_default(),
            stack: r.try_get("stack")?,
            memory_mb: r.try_get("staging_memory_mb")?,
            disk_mb: r.try_get("staging_disk_mb")?,
            created_by: serde_json::from_str(&by).unwrap_or(Value::Null),
            deadline: r.try_get("deadline")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }

    pub fn present(&self, s: &AppState) -> Value {
        let base = format!("{}/builds/{}", s.v3(), self.guid);
        let staged = self.state == "STAGED";
        let mut links =
            json!({"self": link(base), "app": link(format!("{}/apps/{}", s.v3(), self.app_guid))});
        if staged {
            links["droplet"] = link(format!("{}/droplets/{}", s.v3(), self.droplet_guid));
        }
        json!({
            "guid": self.guid, "created_at": ts(self.created_at), "updated_at": ts(self.updated_at),
            "state": self.state,
            "staging_memory_in_mb": self.memory_mb, "staging_disk_in_mb": self.disk_mb,
            "staging_log_rate_limit_bytes_per_second": -1,
            "error": if self.error.is_empty() { Value::Null } else { json!(self.error) },
            "lifecycle": {"type": "buildpack", "data": {"buildpacks": self.buildpacks, "stack": self.stack}},
            "package": {"guid": self.package_guid},
            "droplet": if staged { json!({"guid": self.droplet_guid}) } else { Value::Null },
            "created_by": self.created_by,
            "relationships": {"app": to_one(&self.app_guid)},
            "metadata": metadata(),
            "links": links,
        })
    }
}

pub async fn find(s: &AppState, guid: &str) -> ApiResult<Option<Build>> {
    let row = sqlx::query("SELECT * FROM builds WHERE guid = $1")
        .bind(guid)
        .fetch_optional(&s.db.pool)
        .await?;
    row.as_ref().map(Build::from_row).transpose()
}

async fn create(State(s): State<AppState>, c: Caller, raw: Bytes) -> ApiResult<Response> {
    let req: Value = body(&raw)?;
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
    if p.state != "READY" {
        return Err(ApiError::BadRequest("Cannot stage package whose state is not ready.".into()));
    }
    if p.kind != "bits" {
        return Err(ApiError::Unprocessable("Docker packages cannot be staged on this platform yet; push source code with buildpacks.".into()));
    }
    let mut buildpacks = app.buildpacks.clone();
    let mut stack = app.stack.clone();
    if let Some(bps) = req.pointer("/lifecycle/data/buildpacks").and_then(Value::as_array) {
        buildpacks = bps.iter().filter_map(Value::as_str).map(str::to_owned).collect();
    }
    if let Some(st) = req.pointer("/lifecycle/data/stack").and_then(Value::as_str) {
        stack = st.to_owned();
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
    let refs = crate::http::buildpacks::resolve(&s, &buildpacks, &stack).await?;
    let now = now_ms();
    let build = Build {
        guid: new_guid(),
        app_guid: app.guid.clone(),
        package_guid: p.guid.clone(),
        droplet_guid: new_guid(),
        state: "STAGING".into(),
        error: String::new(),
        buildpacks: buildpacks.clone(),
        stack: stack.clone(),
        memory_mb,
        disk_mb,
        created_by: json!({"guid": c.guid(), "name": c.name(), "email": c.email()}),
        deadline: now + i64::try_from(s.config.staging_timeout_secs).unwrap_or(900) * 1000,
        created_at: now,
        updated_at: now,
    };
    insert_exclusive(&s, &build).await?;
    let request = staging_request(&s, &app, &build, refs).await?;
    let t = space.target(&app.guid, "app", &app.name);
    events::record(
        &s,
        "audit.app.build.create",
        &Actor::of(&c),
        &t,
        json!({"build_guid": build.guid, "package_guid": p.guid}),
    )
    .await;
    if let Err(e) = s.bus.publish_json(wire::subjects::STAGING_REQUEST, &request).await {
        fail(
            &s,
            &build.guid,
            &format!("StagingError - Staging error: the staging request could not be sent ({e})"),
        )
        .await?;
    }
    let build = find(&s, &build.guid).await?.ok_or(ApiError::NotFound("Build"))?;
    Ok((StatusCode::CREATED, Json(build.present(&s))).into_response())
}

/// Insert the build unless the app already has one STAGING (checked and inserted in one
/// transaction, so two racing requests cannot both win).
async fn insert_exclusive(s: &AppState, b: &Build) -> ApiResult<()> {
    let mut tx = s.db.pool.begin().await?;
    let busy = sqlx::query("SELECT guid FROM builds WHERE app_guid = $1 AND state = 'STAGING'")
        .bind(&b.app_guid)
        .fetch_optional(&mut *tx)
        .await?;
    if busy.is_some() {
        return Err(ApiError::StagingInProgress);
    }
    sqlx::query(
        "INSERT INTO builds (guid, app_guid, package_guid, droplet_guid, state, error, buildpacks, stack, \
         staging_memory_mb, staging_disk_mb, created_by, deadline, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 'STAGING', '', $5, $6, $7, $8, $9, $10, $11, $11)",
    )
    .bind(&b.guid)
    .bind(&b.app_guid)
    .bind(&b.package_guid)
    .bind(&b.droplet_guid)
    .bind(json!(b.buildpacks).to_string())
    .bind(&b.stack)
    .bind(b.memory_mb)
    .bind(b.disk_mb)
    .bind(b.created_by.to_string())
    .bind(b.deadline)
    .bind(b.created_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

async fn staging_request(
    s: &AppState,
    app: &App,
    b: &Build,
    refs: crate::http::buildpacks::Resolved,
) -> ApiResult<StagingRequest> {
    let web = crate::http::processes::by_type(s, &app.guid, "web").await?;
    let vcap = crate::http::desired::vcap_application(s, app, web.as_ref()).await?;
    let mut env = app.env.clone();
    env.insert("VCAP_APPLICATION".into(), vcap.to_string());
    env.insert(
        "VCAP_SERVICES".into(),
        crate::http::services::vcap_services(s, &app.guid).await?.to_string(),
    );
    env.insert("MEMORY_LIMIT".into(), format!("{}m", b.memory_mb));
    env.insert("CF_STACK".into(), b.stack.clone());
    let base = s.internal_url();
    Ok(StagingRequest {
        build_guid: b.guid.clone(),
        app_guid: app.guid.clone(),
        package_guid: b.package_guid.clone(),
        package_url: format!("{base}/internal/v1/packages/{}/download", b.package_guid),
        buildpacks: refs.buildpacks,
        skip_detect: refs.skip_detect,
        stack: b.stack.clone(),
        memory_mb: u64::try_from(b.memory_mb).unwrap_or(1024),
        disk_mb: u64::try_from(b.disk_mb).unwrap_or(4096),
        timeout_secs: s.config.staging_timeout_secs,
        env,
        droplet_upload_url: format!("{base}/internal/v1/builds/{}/droplet", b.guid),
        completion_url: format!("{base}/internal/v1/builds/{}/completed", b.guid),
    })
}

/// Fail a STAGING build (no effect on a finished one).
pub async fn fail(s: &AppState, guid: &str, error: &str) -> ApiResult<bool> {
    let r = sqlx::query("UPDATE builds SET state = 'FAILED', error = $1, updated_at = $2 WHERE guid = $3 AND state = 'STAGING'")
        .bind(error)
        .bind(now_ms())
        .bind(guid)
        .execute(&s.db.pool)
        .await?;
    if r.rows_affected() > 0 {
        if let Some(b) = find(s, guid).await? {
            crate::http::logs::api_log(s, &b.app_guid, &format!("Staging failed: {error}")).await;
        }
    }
    Ok(r.rows_affected() > 0)
}

/// The stager's report. Idempotent: a repeated report of a finished build changes nothing.
pub async fn complete(s: &AppState, guid: &str, result: &StagingResult) -> ApiResult<()> {
    let b = find(s, guid).await?.ok_or(ApiError::NotFound("Build"))?;
    if b.state != "STAGING" {
        return Ok(());
    }
    match &result.outcome {
        StagingOutcome::Failed(f) => {
            fail(s, guid, &f.build_error()).await?;
        }
        StagingOutcome::Staged(staged) => {
            let key = blobstore::droplet_key(&b.droplet_guid)?;
            let info = match s.blobs.info(&key).await {
                Ok(i) => i,
                Err(blobstore::BlobError::NotFound { .. }) => {
                    return Err(ApiError::Unprocessable(
                        "The droplet was not uploaded before staging was reported complete.".into(),
                    ))
                }
                Err(e) => return Err(e.into()),
            };
            if info.sha256 != staged.droplet_sha256 {
                fail(s, guid, "StagingError - Staging error: the uploaded droplet does not match its reported checksum").await?;
                return Ok(());
            }
            crate::http::droplets::insert_staged(
                s,
                &b.droplet_guid,
                &b.app_guid,
                &b.package_guid,
                &b.guid,
                staged,
                &b.stack,
            )
            .await?;
            sqlx::query("UPDATE builds SET state = 'STAGED', updated_at = $1 WHERE guid = $2 AND state = 'STAGING'")
                .bind(now_ms())
                .bind(guid)
                .execute(&s.db.pool)
                .await?;
            if let Some(app) = crate::http::apps::find(s, &b.app_guid).await? {
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
        }
    }
    Ok(())
}

/// Fail every STAGING build past its deadline.
pub async fn sweep(s: &AppState) -> ApiResult<u64> {
    let rows = sqlx::query("SELECT guid FROM builds WHERE state = 'STAGING' AND deadline < $1")
        .bind(now_ms())
        .fetch_all(&s.db.pool)
        .await?;
    let mut n = 0;
    for r in rows {
        let g: String = r.try_get("guid")?;
        if fail(
            s,
            &g,
            "StagingTimeExpired - Staging time expired: no stager finished this build in time",
        )
        .await?
        {
            n += 1;
        }
    }
    Ok(n)
}

pub async fn run_sweeper(s: AppState, every: Duration, shutdown: kit::Shutdown) {
    loop {
        if let Err(e) = sweep(&s).await {
            tracing::warn!(error = %e, "staging timeout sweep failed");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

async fn list(
    State(s): State<AppState>,
    c: Caller,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = ListQuery::parse(
        q.as_deref(),
        &["states", "app_guids", "package_guids", "label_selector"],
        &[],
    )?;
    list_with(&s, &c, q, format!("{}/builds", s.v3())).await
}

async fn list_with(s: &AppState, c: &Caller, q: ListQuery, base: String) -> ApiResult<Json<Value>> {
    let mut sel = Select::from("builds").join("JOIN apps a ON a.guid = builds.app_guid");
    crate::http::metadata::select(&mut sel, &q, "builds.guid")?;
    sel.filter(q.filter("states"), "builds.state")
        .filter(q.filter("app_guids"), "builds.app_guid")
        .filter(q.filter("package_guids"), "builds.package_guid");
    sel.visible("a.space_guid", &c.visible_spaces().await?);
    let (total, rows) = sel.page(&s.db, &q.window()).await?;
    let items = rows
        .iter()
        .map(|r| Build::from_row(r).map(|b| b.present(s)))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(q.envelope(&base, total, items)))
}

async fn app_builds(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let app = crate::http::apps::require(&s, &c, &guid, Need::Read).await?;
    let mut q = ListQuery::parse(q.as_deref(), &["states", "label_selector"], &[])?;
    q.filters.insert("app_guids".into(), vec![app.guid]);
    list_with(&s, &c, q, format!("{}/apps/{guid}/builds", s.v3())).await
}

async fn show(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<Value>> {
    let b = find(&s, &guid).await?.ok_or(ApiError::NotFound("Build"))?;
    crate::http::apps::require(&s, &c, &b.app_guid, Need::Read).await.map_err(|e| match e {
        ApiError::NotFound(_) => ApiError::NotFound("Build"),
        e => e,
    })?;
    Ok(Json(b.present(&s)))
}
