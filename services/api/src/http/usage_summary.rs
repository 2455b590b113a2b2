//! Usage summaries of an org and a space (`.../usage_summary`): started instances and their
//! memory (with unfinished tasks), routes, service instances and keys, private domains and
//! tasks.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use wire::v3::quota::{Usage, UsageSummary};
use wire::v3::Link;

use crate::access::{Caller, Need};
use crate::error::ApiResult;
use crate::http::util::links;
use crate::store::quotas::{self, Scope};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/organizations/{guid}/usage_summary", get(org))
        .route("/v3/spaces/{guid}/usage_summary", get(space))
}

async fn summary(s: &AppState, scope: Scope<'_>, owner: (&str, String)) -> ApiResult<UsageSummary> {
    let u = quotas::usage(&s.db.pool, scope).await?;
    let href = format!("{}/usage_summary", owner.1);
    Ok(UsageSummary {
        usage_summary: Usage {
            started_instances: u.started_instances,
            memory_in_mb: u.memory_mb,
            routes: u.routes,
            service_instances: u.service_instances,
            reserved_ports: 0,
            domains: u.domains,
            per_app_tasks: u.tasks,
            service_keys: u.service_keys,
        },
        links: links([("self", Link::new(href)), (owner.0, Link::new(owner.1))]),
    })
}

async fn org(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<UsageSummary>> {
    let o = crate::http::orgs::readable(&s, &c, &guid).await?;
    let owner = ("organization", format!("{}/organizations/{}", s.v3(), o.guid));
    Ok(Json(summary(&s, Scope::Org(&o.guid), owner).await?))
}

async fn space(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<UsageSummary>> {
    let sp = crate::http::spaces::require(&s, &c, &guid, Need::Read).await?;
    let owner = ("space", format!("{}/spaces/{}", s.v3(), sp.guid));
    Ok(Json(summary(&s, Scope::Space(&sp.guid), owner).await?))
}
