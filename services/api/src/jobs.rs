//! Asynchronous operations (contracts/ccapi.md §4.13): a job row per operation, `202` with an
//! absolute `Location`, `GET /v3/jobs/:guid` for polling. A job never stays PROCESSING across
//! an api restart: those are failed at start-up with a reason.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use sqlx::Row as _;

use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::util::{link, new_guid, now_ms, ts};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v3/jobs/{guid}", get(show))
}

pub async fn start(s: &AppState, operation: &str, rtype: &str, rguid: &str) -> ApiResult<String> {
    let guid = new_guid();
    let now = now_ms();
    sqlx::query(
        "INSERT INTO jobs (guid, operation, state, errors, warnings, resource_type, resource_guid, \
         created_at, updated_at) VALUES ($1, $2, 'PROCESSING', '[]', '[]', $3, $4, $5, $5)",
    )
    .bind(&guid)
    .bind(operation)
    .bind(rtype)
    .bind(rguid)
    .bind(now)
    .execute(&s.db.pool)
    .await?;
    Ok(guid)
}

/// Settle a job with the operation's outcome.
pub async fn finish(s: &AppState, guid: &str, outcome: ApiResult<()>) {
    let (state, errors) = match &outcome {
        Ok(()) => ("COMPLETE", json!([])),
        Err(e) => {
            if let ApiError::Internal(d) = e {
                tracing::error!(error = %d, job = guid, "job failed");
            }
            ("FAILED", Value::Array(e.entries()))
        }
    };
    let res =
        sqlx::query("UPDATE jobs SET state = $1, errors = $2, updated_at = $3 WHERE guid = $4")
            .bind(state)
            .bind(errors.to_string())
            .bind(now_ms())
            .bind(guid)
            .execute(&s.db.pool)
            .await;
    if let Err(e) = res {
        tracing::error!(error = %e, job = guid, "could not settle a job");
    }
}

/// `202 Accepted` with the job's absolute URL.
pub fn accepted(s: &AppState, guid: &str) -> Response {
    let url = format!("{}/jobs/{guid}", s.v3());
    (StatusCode::ACCEPTED, [(header::LOCATION, url)]).into_response()
}

/// Jobs left PROCESSING by a previous run can never finish: fail them.
pub async fn fail_orphans(db: &kit::db::Db) -> Result<u64, sqlx::Error> {
    let err = json!([{"code": 10001, "title": "UnknownError",
        "detail": "The api restarted while this job was running; run the operation again."}]);
    let r = sqlx::query(
        "UPDATE jobs SET state = 'FAILED', errors = $1, updated_at = $2 WHERE state = 'PROCESSING'",
    )
    .bind(err.to_string())
    .bind(now_ms())
    .execute(&db.pool)
    .await?;
    Ok(r.rows_affected())
}

async fn show(
    State(s): State<AppState>,
    _c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<Value>> {
    let r = sqlx::query("SELECT * FROM jobs WHERE guid = $1")
        .bind(&guid)
        .fetch_optional(&s.db.pool)
        .await?
        .ok_or(ApiError::NotFound("Job"))?;
    let parse = |col: &str| -> ApiResult<Value> {
        let raw: String = r.try_get(col)?;
        Ok(serde_json::from_str(&raw).unwrap_or(Value::Array(vec![])))
    };
    let rtype: String = r.try_get("resource_type")?;
    let rguid: String = r.try_get("resource_guid")?;
    let mut links = serde_json::Map::new();
    links.insert("self".into(), link(format!("{}/jobs/{guid}", s.v3())));
    if !rtype.is_empty() {
        let name = rtype.trim_end_matches('s').to_owned();
        links.insert(name, link(format!("{}/{rtype}/{rguid}", s.v3())));
    }
    Ok(Json(json!({
        "guid": guid,
        "created_at": ts(r.try_get("created_at")?), "updated_at": ts(r.try_get("updated_at")?),
        "operation": r.try_get::<String, _>("operation")?,
        "state": r.try_get::<String, _>("state")?,
        "errors": parse("errors")?, "warnings": parse("warnings")?,
        "links": links,
    })))
}
