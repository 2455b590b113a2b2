//! The scheduler's HTTP API (internal audience: a component token with `paas.internal`).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use futures::StreamExt as _;
use serde::Deserialize;
use tokio_stream::wrappers::BroadcastStream;
use wire::lrp::{CellPresence, DesiredLrp, DesiredLrpSync, DesiredLrpUpdate, InstanceReport};

use crate::engine::{Engine, EngineError};
use crate::repo::Stored;

#[derive(Clone)]
pub struct Api {
    pub engine: Engine,
    pub verifier: Arc<auth::Verifier>,
    pub leadership: crate::leader::Leadership,
}

pub fn routes(api: Api) -> Router {
    Router::new()
        .route("/v1/desired_lrps", get(list_desired))
        .route(
            "/v1/desired_lrps/{guid}",
            put(put_desired).patch(patch_desired).delete(delete_desired).get(get_desired),
        )
        .route("/v1/domains/{domain}/desired_lrps", put(sync_domain))
        .route("/v1/actual_lrps", get(list_actual))
        .route("/v1/actual_lrps/{guid}/{index}", delete(restart_instance))
        .route("/v1/actual_lrps/claim", post(claim))
        .route("/v1/actual_lrps/start", post(start))
        .route("/v1/actual_lrps/crash", post(crash))
        .route("/v1/actual_lrps/remove", post(remove))
        .route("/v1/actual_lrps/evacuate", post(evacuate))
        .route("/v1/cells/presence", post(presence))
        .route("/v1/cells", get(list_cells))
        .route("/v1/events", get(events))
        .route("/v1/tasks", get(list_tasks))
        .route("/v1/tasks/{guid}", put(put_task).get(get_task))
        .route("/v1/tasks/{guid}/cancel", post(cancel_task))
        .route("/v1/tasks/{guid}/completed", post(task_completed))
        .layer(axum::middleware::from_fn_with_state(api.clone(), internal_only))
        .with_state(api)
}

async fn internal_only(State(api): State<Api>, req: Request, next: Next) -> Response {
    let header = req.headers().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    match api.verifier.verify(header).await {
        Ok(c) if c.is_internal() => {
            if req.method() != axum::http::Method::GET && !api.leadership.is_leader() {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "this scheduler is a standby; send changes to the leader",
                );
            }
            next.run(req).await
        }
        Ok(_) => {
            error(StatusCode::FORBIDDEN, "a component token (scope paas.internal) is required")
        }
        Err(e) => error(StatusCode::UNAUTHORIZED, &e.to_string()),
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

impl IntoResponse for EngineError {
    fn into_response(self) -> Response {
        match self {
            EngineError::NotFound => error(StatusCode::NOT_FOUND, "no such instance"),
            EngineError::Conflict(m) => error(StatusCode::CONFLICT, &m),
            EngineError::Repo(e) => {
                tracing::error!(error = %e, "scheduler storage failed");
                error(StatusCode::INTERNAL_SERVER_ERROR, "storage failure")
            }
        }
    }
}

type Result<T> = std::result::Result<T, EngineError>;

async fn put_desired(
    State(api): State<Api>,
    Path(guid): Path<String>,
    Json(d): Json<DesiredLrp>,
) -> Result<Response> {
    if d.process_guid != guid {
        return Ok(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "process_guid in the body differs from the path",
        ));
    }
    let before = api.engine.repo.get_desired(&guid).await?;
    let stored = api.engine.repo.put_desired(&d, api.engine.now()).await?;
    let status = match stored {
        Stored::Created => StatusCode::CREATED,
        Stored::Updated | Stored::Unchanged => StatusCode::OK,
        Stored::Conflict(m) => return Ok(error(StatusCode::UNPROCESSABLE_ENTITY, &m)),
    };
    if before.is_some_and(|b| b.routes != d.routes) {
        api.engine.routes_changed(&guid);
    }
    api.engine.desired_changed(&guid).await?;
    Ok((status, Json(d)).into_response())
}

/// Fields a PATCH may carry; anything else changes the process and needs a new guid.
const UPDATABLE: [&str; 4] = ["instances", "routes", "annotation", "metric_tags"];

async fn patch_desired(
    State(api): State<Api>,
    Path(guid): Path<String>,
    Json(body): Json<serde_json::Value>,
) -> Result<Response> {
    let Some(fields) = body.as_object() else {
        return Ok(error(StatusCode::BAD_REQUEST, "the body must be a JSON object"));
    };
    if let Some(other) = fields.keys().find(|k| !UPDATABLE.contains(&k.as_str())) {
        let message = format!(
            "{other} cannot change in place: only instances, routes, annotation and metric_tags may; use a new process guid"
        );
        return Ok(error(StatusCode::UNPROCESSABLE_ENTITY, &message));
    }
    let u: DesiredLrpUpdate = match serde_json::from_value(body) {
        Ok(u) => u,
        Err(e) => return Ok(error(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string())),
    };
    let before = api.engine.repo.get_desired(&guid).await?;
    match api.engine.repo.update_desired(&guid, &u, api.engine.now()).await? {
        Some(d) => {
            if before.is_some_and(|b| b.routes != d.routes) {
                api.engine.routes_changed(&guid);
            }
            api.engine.desired_changed(&guid).await?;
            Ok(Json(d).into_response())
        }
        None => Ok(error(StatusCode::NOT_FOUND, "no such desired LRP")),
    }
}

async fn get_desired(State(api): State<Api>, Path(guid): Path<String>) -> Result<Response> {
    Ok(match api.engine.repo.get_desired(&guid).await? {
        Some(d) => Json(d).into_response(),
        None => error(StatusCode::NOT_FOUND, "no such desired LRP"),
    })
}

async fn delete_desired(State(api): State<Api>, Path(guid): Path<String>) -> Result<Response> {
    if !api.engine.repo.delete_desired(&guid).await? {
        return Ok(error(StatusCode::NOT_FOUND, "no such desired LRP"));
    }
    api.engine.desired_removed(&guid).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
struct DesiredFilter {
    domain: Option<String>,
    log_guid: Option<String>,
}

async fn list_desired(State(api): State<Api>, Query(f): Query<DesiredFilter>) -> Result<Response> {
    let list = api.engine.repo.list_desired(f.domain.as_deref(), f.log_guid.as_deref()).await?;
    Ok(Json(list).into_response())
}

/// The complete desired set of a domain: create or update what is listed, remove the rest.
async fn sync_domain(
    State(api): State<Api>,
    Path(domain): Path<String>,
    Json(sync): Json<DesiredLrpSync>,
) -> Result<Response> {
    if sync.desired_lrps.iter().any(|d| d.domain != domain) {
        return Ok(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "every desired LRP must be in the path's domain",
        ));
    }
    let now = api.engine.now();
    let mut conflicts = Vec::new();
    let before: std::collections::HashMap<String, Vec<wire::lrp::Route>> = api
        .engine
        .repo
        .list_desired(Some(&domain), None)
        .await?
        .into_iter()
        .map(|d| (d.process_guid, d.routes))
        .collect();
    for d in &sync.desired_lrps {
        match api.engine.repo.put_desired(d, now).await? {
            Stored::Conflict(m) => conflicts.push(format!("{}: {m}", d.process_guid)),
            _ if before.get(&d.process_guid).is_some_and(|r| *r != d.routes) => {
                api.engine.routes_changed(&d.process_guid);
            }
            _ => {}
        }
    }
    let wanted: std::collections::HashSet<&str> =
        sync.desired_lrps.iter().map(|d| d.process_guid.as_str()).collect();
    for d in api.engine.repo.list_desired(Some(&domain), None).await? {
        if !wanted.contains(d.process_guid.as_str()) {
            api.engine.repo.delete_desired(&d.process_guid).await?;
            api.engine.desired_removed(&d.process_guid).await?;
        }
    }
    api.engine.converge().await?;
    Ok(Json(serde_json::json!({ "conflicts": conflicts })).into_response())
}

#[derive(Deserialize)]
struct ActualFilter {
    process_guid: Option<String>,
    log_guid: Option<String>,
    cell_id: Option<String>,
}

async fn list_actual(State(api): State<Api>, Query(f): Query<ActualFilter>) -> Result<Response> {
    let mut list =
        api.engine.repo.list_actual(f.process_guid.as_deref(), f.cell_id.as_deref()).await?;
    if let Some(log_guid) = f.log_guid {
        let guids: std::collections::HashSet<String> = api
            .engine
            .repo
            .list_desired(None, Some(&log_guid))
            .await?
            .into_iter()
            .map(|d| d.process_guid)
            .collect();
        list.retain(|a| guids.contains(&a.process_guid));
    }
    Ok(Json(list).into_response())
}

async fn restart_instance(
    State(api): State<Api>,
    Path((guid, index)): Path<(String, u32)>,
) -> Result<Response> {
    api.engine.restart_instance(&guid, index).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The claim, answered with the desired routes read after it is stored: a route change that
/// did not reach the cell (the instance was not claimed yet) is in the answer.
async fn claim(
    State(api): State<Api>,
    Json(r): Json<InstanceReport>,
) -> Result<Json<wire::lrp::ClaimResult>> {
    api.engine.claim(&r).await?;
    let desired = api.engine.repo.get_desired(&r.instance.process_guid).await?;
    Ok(Json(wire::lrp::ClaimResult { routes: desired.map(|d| d.routes) }))
}

async fn start(State(api): State<Api>, Json(r): Json<InstanceReport>) -> Result<StatusCode> {
    api.engine.start(&r).await.map(|()| StatusCode::NO_CONTENT)
}

async fn crash(State(api): State<Api>, Json(r): Json<InstanceReport>) -> Result<StatusCode> {
    api.engine.crash(&r).await.map(|()| StatusCode::NO_CONTENT)
}

async fn remove(State(api): State<Api>, Json(r): Json<InstanceReport>) -> Result<StatusCode> {
    api.engine.remove(&r).await.map(|()| StatusCode::NO_CONTENT)
}

async fn evacuate(State(api): State<Api>, Json(r): Json<InstanceReport>) -> Result<Response> {
    Ok(Json(api.engine.evacuate(&r).await?).into_response())
}

async fn presence(State(api): State<Api>, Json(p): Json<CellPresence>) -> Result<StatusCode> {
    api.engine.cell_presence(&p).await.map(|()| StatusCode::NO_CONTENT)
}

async fn list_cells(State(api): State<Api>) -> Result<Response> {
    let cells: Vec<serde_json::Value> = api
        .engine
        .repo
        .list_cells()
        .await
        .map_err(EngineError::from)?
        .into_iter()
        .map(|(p, seen)| serde_json::json!({ "presence": p, "last_seen": seen }))
        .collect();
    Ok(Json(cells).into_response())
}

async fn events(State(api): State<Api>) -> Response {
    let stream = BroadcastStream::new(api.engine.subscribe()).filter_map(|e| async move {
        let e = e.ok()?;
        Some(Ok::<_, Infallible>(Event::default().data(serde_json::to_string(&e).ok()?)))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response()
}

#[derive(Debug, Deserialize)]
struct TaskFilter {
    domain: Option<String>,
}

async fn list_tasks(State(api): State<Api>, Query(f): Query<TaskFilter>) -> Response {
    match api.engine.list_tasks(f.domain.as_deref()).await {
        Ok(list) => Json(list).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn get_task(State(api): State<Api>, Path(guid): Path<String>) -> Response {
    match api.engine.get_task(&guid).await {
        Ok(Some(t)) => Json(t).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no such task"),
        Err(e) => e.into_response(),
    }
}

async fn put_task(
    State(api): State<Api>,
    Path(guid): Path<String>,
    Json(def): Json<wire::task::TaskDefinition>,
) -> Response {
    if def.task_guid != guid {
        return error(StatusCode::BAD_REQUEST, "task_guid differs from the path");
    }
    match api.engine.desire_task(def).await {
        Ok(true) => StatusCode::CREATED.into_response(),
        Ok(false) => StatusCode::OK.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn cancel_task(State(api): State<Api>, Path(guid): Path<String>) -> Response {
    match api.engine.cancel_task(&guid).await {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(EngineError::NotFound) => error(StatusCode::NOT_FOUND, "no such task"),
        Err(e) => e.into_response(),
    }
}

async fn task_completed(
    State(api): State<Api>,
    Path(guid): Path<String>,
    Json(done): Json<wire::task::TaskCompletion>,
) -> Response {
    if done.task_guid != guid {
        return error(StatusCode::BAD_REQUEST, "task_guid differs from the path");
    }
    match api.engine.task_completed(&done).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(EngineError::NotFound) => error(StatusCode::NOT_FOUND, "no such task"),
        Err(e) => e.into_response(),
    }
}
