//! The cell's internal API for the scheduler (component token, scope `paas.internal`).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use wire::lrp::{RoutesUpdate, StopRequest, Work};

use crate::executor::Executor;
use crate::shared::Shared;

#[derive(Clone)]
pub struct Api {
    pub executor: Executor,
    pub shared: Arc<Shared>,
    pub verifier: Arc<auth::Verifier>,
}

pub fn routes(api: Api) -> Router {
    Router::new()
        .route("/internal/v1/state", get(state))
        .route("/internal/v1/work", post(work))
        .route("/internal/v1/stop", post(stop))
        .route("/internal/v1/routes", post(update_routes))
        .route("/internal/v1/tasks", post(run_task))
        .route("/internal/v1/tasks/cancel", post(cancel_task))
        .route("/internal/v1/instances/{guid}/exec", post(crate::ssh::exec))
        .route("/internal/v1/instances/{guid}/connect", post(crate::ssh::connect))
        .layer(axum::middleware::from_fn_with_state(api.clone(), internal_only))
        .with_state(api)
}

async fn internal_only(State(api): State<Api>, req: Request, next: Next) -> Response {
    let header = req.headers().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    match api.verifier.verify(header).await {
        Ok(c) if c.is_internal() => next.run(req).await,
        Ok(_) => (StatusCode::FORBIDDEN, "a component token (scope paas.internal) is required\n")
            .into_response(),
        Err(e) => (StatusCode::UNAUTHORIZED, format!("{e}\n")).into_response(),
    }
}

async fn state(State(api): State<Api>) -> Response {
    Json(api.executor.state()).into_response()
}

async fn work(State(api): State<Api>, Json(w): Json<Work>) -> Response {
    Json(api.executor.perform(w)).into_response()
}

async fn stop(State(api): State<Api>, Json(r): Json<StopRequest>) -> Response {
    if api.executor.stop(&r) {
        StatusCode::ACCEPTED.into_response()
    } else {
        (StatusCode::NOT_FOUND, "no such instance on this cell\n").into_response()
    }
}

async fn update_routes(State(api): State<Api>, Json(r): Json<RoutesUpdate>) -> Response {
    if api.executor.update_routes(r).await {
        StatusCode::ACCEPTED.into_response()
    } else {
        (StatusCode::NOT_FOUND, "no instance of this process on this cell\n").into_response()
    }
}

async fn run_task(State(api): State<Api>, Json(t): Json<wire::task::TaskDefinition>) -> Response {
    if api.executor.run_task(t) {
        StatusCode::ACCEPTED.into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "this cell cannot take the task now\n").into_response()
    }
}

async fn cancel_task(State(api): State<Api>, Json(r): Json<wire::task::TaskCancel>) -> Response {
    if api.executor.cancel_task(&r.task_guid) {
        StatusCode::ACCEPTED.into_response()
    } else {
        (StatusCode::NOT_FOUND, "no such task on this cell\n").into_response()
    }
}
