//! `GET /v3/jobs/:guid` for polling an asynchronous operation, and the `202 Accepted` with the
//! job's absolute `Location` every asynchronous endpoint answers.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::http::util::{link, ts};
use crate::store;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v3/jobs/{guid}", get(show))
}

/// `202 Accepted` with the job's absolute URL.
pub fn accepted(s: &AppState, guid: &str) -> Response {
    let url = format!("{}/jobs/{guid}", s.v3());
    (StatusCode::ACCEPTED, [(header::LOCATION, url)]).into_response()
}

async fn show(
    State(s): State<AppState>,
    _c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<Value>> {
    let job = store::jobs::find(&s.db.pool, &guid).await?.ok_or(ApiError::NotFound("Job"))?;
    let mut links = serde_json::Map::new();
    links.insert("self".into(), link(format!("{}/jobs/{guid}", s.v3())));
    if !job.resource_type.is_empty() {
        let name = job.resource_type.trim_end_matches('s').to_owned();
        links.insert(name, link(format!("{}/{}/{}", s.v3(), job.resource_type, job.resource_guid)));
    }
    Ok(Json(json!({
        "guid": job.guid,
        "created_at": ts(job.created_at), "updated_at": ts(job.updated_at),
        "operation": job.operation,
        "state": job.state,
        "errors": job.errors, "warnings": job.warnings,
        "links": links,
    })))
}
