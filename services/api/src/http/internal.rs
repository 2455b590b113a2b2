//! The internal API for platform components (`/internal/v1`, token scope `paas.internal`):
//! downloads of packages, buildpacks and droplets for stagers and cells, the claim (and
//! heartbeat), droplet upload and completion report of a staging, the logs service's log access check (`/internal/v4`, asked
//! with the reader's own token), and the `app.events` subscriber that turns instance crashes
//! into audit events.

use axum::body::Body;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use futures::StreamExt as _;
use serde_json::json;

use crate::access::{Caller, Need};
use crate::domain::events::{self, Actor};
use crate::error::{ApiError, ApiResult};
use crate::store;
use crate::AppState;

/// A platform component's verified token.
pub struct Component;

impl FromRequestParts<AppState> for Component {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(ApiError::NotAuthenticated)?;
        let claims =
            state.uaa.verifier.verify(header).await.map_err(|_| ApiError::InvalidAuthToken)?;
        if !claims.is_internal() {
            return Err(ApiError::NotAuthorized);
        }
        Ok(Component)
    }
}

pub fn routes(max_droplet: u64) -> Router<AppState> {
    let limit = usize::try_from(max_droplet.saturating_add(1 << 20)).unwrap_or(usize::MAX);
    Router::new()
        .route("/internal/v1/packages/{guid}/download", get(package))
        .route("/internal/v1/buildpacks/{guid}/download", get(buildpack))
        .route("/internal/v1/droplets/{guid}/download", get(droplet))
        .route(
            "/internal/v1/builds/{guid}/droplet",
            put(upload_droplet).layer(axum::extract::DefaultBodyLimit::max(limit)),
        )
        .route("/internal/v1/builds/{guid}/claim", post(claim))
        .route("/internal/v1/builds/{guid}/completed", post(completed))
        .route("/internal/v1/syslog_drains", get(syslog_drains))
        .route("/internal/v4/log_access/{guid}", get(log_access))
        .route("/internal/v4/tasks/{guid}/completed", post(task_completed))
}

/// The logs service asks with the reader's token whether they may read an app's logs.
async fn log_access(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<StatusCode> {
    crate::http::apps::require(&s, &c, &guid, Need::Read).await?;
    Ok(StatusCode::OK)
}

/// Apps bound to a drain URL, for the logs service.
async fn syslog_drains(
    State(s): State<AppState>,
    _c: Component,
) -> ApiResult<Json<wire::drains::SyslogDrains>> {
    Ok(Json(crate::domain::services::syslog_drains(&s).await?))
}

async fn package(
    State(s): State<AppState>,
    _c: Component,
    Path(guid): Path<String>,
) -> ApiResult<Response> {
    crate::http::packages::stream_blob(
        &s,
        &blobstore::package_key(&guid)?,
        "application/zip",
        "Package",
    )
    .await
}

async fn buildpack(
    State(s): State<AppState>,
    _c: Component,
    Path(guid): Path<String>,
) -> ApiResult<Response> {
    crate::http::packages::stream_blob(
        &s,
        &blobstore::buildpack_key(&guid)?,
        "application/zip",
        "Buildpack",
    )
    .await
}

async fn droplet(
    State(s): State<AppState>,
    _c: Component,
    Path(guid): Path<String>,
) -> ApiResult<Response> {
    crate::http::packages::stream_blob(
        &s,
        &blobstore::droplet_key(&guid)?,
        "application/gzip",
        "Droplet",
    )
    .await
}

/// The stager's droplet, streamed into the blobstore under the build's droplet guid.
async fn upload_droplet(
    State(s): State<AppState>,
    _c: Component,
    Path(guid): Path<String>,
    body: Body,
) -> ApiResult<Json<wire::staging::DropletStored>> {
    let b =
        crate::store::builds::find(&s.db.pool, &guid).await?.ok_or(ApiError::NotFound("Build"))?;
    if b.state != wire::v3::BuildState::Staging {
        return Err(ApiError::Unprocessable(format!(
            "Build is {}, not STAGING; the droplet is not needed",
            b.state
        )));
    }
    let max = s.config.max_droplet_bytes;
    let mut seen = 0u64;
    let stream = body.into_data_stream().map(move |chunk| {
        let chunk = chunk.map_err(std::io::Error::other)?;
        seen += chunk.len() as u64;
        if seen > max {
            return Err(std::io::Error::other(format!("droplet larger than {max} bytes")));
        }
        Ok(chunk)
    });
    let info = s
        .blobs
        .put_stream(&blobstore::droplet_key(&b.droplet_guid)?, Box::pin(stream))
        .await
        .map_err(|e| ApiError::BadRequest(format!("droplet upload failed: {e}")))?;
    Ok(Json(wire::staging::DropletStored { sha256: info.sha256, size: info.size }))
}

/// A stager claims a STAGING build before it stages it, and again as its heartbeat: 200 while
/// the claim is its own, 409 when another stager has the build or it is no longer STAGING.
async fn claim(
    State(s): State<AppState>,
    _c: Component,
    Path(guid): Path<String>,
    raw: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    let claim: wire::staging::StagingClaim = serde_json::from_slice(&raw)
        .map_err(|e| ApiError::Parse(format!("invalid staging claim: {e}")))?;
    crate::domain::staging::claim(&s, &guid, &claim.stager_id).await?;
    Ok(StatusCode::OK)
}

async fn completed(
    State(s): State<AppState>,
    _c: Component,
    Path(guid): Path<String>,
    raw: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    let result: wire::staging::StagingResult = serde_json::from_slice(&raw)
        .map_err(|e| ApiError::Parse(format!("invalid staging result: {e}")))?;
    if result.build_guid != guid {
        return Err(ApiError::Unprocessable("build_guid does not match the URL".into()));
    }
    crate::http::builds::complete(&s, &guid, &result).await?;
    Ok(StatusCode::OK)
}

/// Record `app.events` (instance crashes) as audit events of the app.
pub async fn run_app_events(s: AppState, shutdown: kit::Shutdown) {
    let mut sub = match s.bus.subscribe(wire::subjects::APP_EVENTS).await {
        Ok(sub) => sub,
        Err(e) => {
            tracing::error!(error = %e, "cannot subscribe to app.events; crashes will not be recorded");
            return;
        }
    };
    loop {
        let msg = tokio::select! {
            () = shutdown.cancelled() => return,
            m = sub.next() => match m { Some(m) => m, None => return },
        };
        let Ok(ev) = serde_json::from_slice::<wire::events::AppEvent>(&msg.payload) else {
            continue;
        };
        if let Err(e) = record_app_event(&s, &ev).await {
            tracing::warn!(error = %e, app_guid = %ev.app_guid, "could not record an app event");
        }
    }
}

/// The data of `audit.app.process.crash` under Cloud Controller's names: `reason` is always
/// `CRASHED`, the why is `exit_description`, `crash_timestamp` in Unix ns; `cell_id` and
/// `instance` only where known.
fn crash_data(
    ev: &wire::events::AppEvent,
    exit_description: &str,
    crash_count: u32,
    process_type: &str,
) -> serde_json::Value {
    let mut data = json!({"index": ev.index, "reason": "CRASHED",
        "exit_description": exit_description, "crash_count": crash_count,
        "crash_timestamp": ev.timestamp, "process_type": process_type});
    for (key, value) in [("instance", &ev.instance_guid), ("cell_id", &ev.cell_id)] {
        if !value.is_empty() {
            data[key] = json!(value);
        }
    }
    data
}

async fn record_app_event(s: &AppState, ev: &wire::events::AppEvent) -> ApiResult<()> {
    let Some(app) = store::apps::find(&s.db.pool, &ev.app_guid).await? else { return Ok(()) };
    let Some(space) = crate::store::spaces::find(&s.db.pool, &app.space_guid).await? else {
        return Ok(());
    };
    let t = space.target(&app.guid, "app", &app.name);
    let ptype = store::processes::type_of_lrp(&s.db.pool, &app.guid, &ev.process_guid)
        .await?
        .unwrap_or_else(|| "web".into());
    match &ev.kind {
        wire::events::AppEventKind::Crash { reason, crash_count, .. } => {
            let data = crash_data(ev, reason, *crash_count, &ptype);
            events::record(
                s,
                "audit.app.process.crash",
                &Actor { guid: app.guid.clone(), kind: "process".into(), name: app.name.clone() },
                &t,
                data,
            )
            .await;
        }
        wire::events::AppEventKind::PlacementFailed { error } => {
            crate::domain::events::api_log(
                s,
                &app.guid,
                &format!("Instance {} could not be placed: {error}", ev.index),
            )
            .await;
        }
    }
    Ok(())
}

/// The scheduler: a task ended.
async fn task_completed(
    State(s): State<AppState>,
    _c: Component,
    Path(guid): Path<String>,
    Json(done): Json<wire::task::TaskCompletion>,
) -> ApiResult<StatusCode> {
    crate::http::tasks::completed(&s, &guid, &done).await?;
    Ok(StatusCode::NO_CONTENT)
}
