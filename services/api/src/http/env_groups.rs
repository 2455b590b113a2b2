//! Environment variable groups (`/v3/environment_variable_groups/running|staging`): anyone
//! signed in reads them, admins change them (docs/api.md).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;
use wire::v3::env_group::EnvironmentVariableGroup;
use wire::v3::Link;

use crate::access::Caller;
use crate::domain::env_groups::{self, Group};
use crate::error::{ApiError, ApiResult};
use crate::http::extract::CfJson;
use crate::http::util::{links, ts};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v3/environment_variable_groups/{name}", get(show).patch(update))
}

fn present(
    s: &AppState,
    g: Group,
    (var, at): (BTreeMap<String, String>, Option<i64>),
) -> Json<EnvironmentVariableGroup> {
    let href = format!("{}/environment_variable_groups/{}", s.v3(), g.name());
    Json(EnvironmentVariableGroup {
        updated_at: at.map(ts),
        name: g.name().into(),
        var,
        links: links([("self", Link::new(href))]),
    })
}

async fn show(
    State(s): State<AppState>,
    _c: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<EnvironmentVariableGroup>> {
    let g = Group::parse(&name)?;
    Ok(present(&s, g, env_groups::get(&s, g).await?))
}

async fn update(
    State(s): State<AppState>,
    c: Caller,
    Path(name): Path<String>,
    CfJson(req): CfJson<Value>,
) -> ApiResult<Json<EnvironmentVariableGroup>> {
    let g = Group::parse(&name)?;
    let Some(Value::Object(vars)) = req.get("var") else {
        return Err(ApiError::Unprocessable("Var must be an object".into()));
    };
    Ok(present(&s, g, env_groups::update(&s, &c, g, vars).await?))
}
