//! `GET /v3/jobs/:guid` for polling an asynchronous operation, and the `202 Accepted` with the
//! job's absolute `Location` every asynchronous endpoint answers.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use wire::v3::{self, Link};

use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::http::util::{links, ts};
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
) -> ApiResult<Json<v3::Job>> {
    let job = store::jobs::find(&s.db.pool, &guid).await?.ok_or(ApiError::NotFound("Job"))?;
    let mut links = links([("self", Link::new(format!("{}/jobs/{guid}", s.v3())))]);
    if !job.resource_type.is_empty() {
        let name = job.resource_type.trim_end_matches('s').to_owned();
        let href = format!("{}/{}/{}", s.v3(), job.resource_type, job.resource_guid);
        links.insert(name, Link::new(href));
    }
    Ok(Json(v3::Job {
        guid: job.guid,
        created_at: ts(job.created_at),
        updated_at: ts(job.updated_at),
        operation: job.operation,
        state: job.state,
        errors: job.errors,
        warnings: job.warnings,
        links,
    }))
}
