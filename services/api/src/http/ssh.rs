//! SSH (docs/api.md, "SSH"): the switches (`/v3/apps/:guid/features/ssh`,
//! `/v3/spaces/:guid/features/ssh`, `/v3/apps/:guid/ssh_enabled`), the token issuer's one-time
//! codes (`GET /oauth/authorize?response_type=code&client_id=ssh-proxy`, answered with a 302
//! whose `Location` carries `code=`), and the SSH endpoint's redemption of a code
//! (`POST /internal/v1/ssh/authorize`, component token). The rules are in
//! [`crate::domain::ssh`].

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use wire::ssh::{Authorize, Refused};
use wire::v3::app::{Feature, FeatureUpdate, SshEnabled};

use crate::access::{Caller, Need};
use crate::domain::ssh::{self as rules, Refusal};
use crate::error::{ApiError, ApiResult};
use crate::http::extract::CfJson;
use crate::http::internal::Component;
use crate::store;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/apps/{guid}/ssh_enabled", get(ssh_enabled))
        .route("/v3/apps/{guid}/features/{name}", get(app_feature).patch(patch_app_feature))
        .route("/v3/spaces/{guid}/features/{name}", get(space_feature).patch(patch_space_feature))
}

/// The token issuer's part (`/oauth`), beside `/oauth/token`.
pub fn oauth_routes() -> Router<AppState> {
    Router::new().route("/oauth/authorize", get(authorize_code))
}

pub fn internal_routes() -> Router<AppState> {
    Router::new().route("/internal/v1/ssh/authorize", post(redeem))
}

const APP_FEATURE: &str = "Enable SSHing into the app.";
const SPACE_FEATURE: &str = "Enable SSHing into apps in the space.";

fn only_ssh(name: &str) -> ApiResult<()> {
    if name == "ssh" {
        Ok(())
    } else {
        Err(ApiError::NotFound("Feature"))
    }
}

fn feature(description: &str, enabled: bool) -> Json<Feature> {
    Json(Feature { name: "ssh".into(), description: description.into(), enabled })
}

async fn ssh_enabled(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<SshEnabled>> {
    let (app, space) = crate::http::apps::require_with_space(&s, &c, &guid, Need::Read).await?;
    let reason = rules::disabled_reason(&s, &app, &space).await?;
    Ok(Json(SshEnabled { enabled: reason.is_none(), reason: reason.unwrap_or_default() }))
}

async fn app_feature(
    State(s): State<AppState>,
    c: Caller,
    Path((guid, name)): Path<(String, String)>,
) -> ApiResult<Json<Feature>> {
    let app = crate::http::apps::require(&s, &c, &guid, Need::Read).await?;
    only_ssh(&name)?;
    let on = store::ssh::app_enabled(&s.db.pool, &app.guid).await?.unwrap_or(false);
    Ok(feature(APP_FEATURE, on))
}

async fn patch_app_feature(
    State(s): State<AppState>,
    c: Caller,
    Path((guid, name)): Path<(String, String)>,
    CfJson(body): CfJson<FeatureUpdate>,
) -> ApiResult<Json<Feature>> {
    let (app, space) =
        crate::http::apps::require_with_space(&s, &c, &guid, Need::Developer).await?;
    only_ssh(&name)?;
    rules::set_app(&s, &c, &app, &space, body.enabled).await?;
    Ok(feature(APP_FEATURE, body.enabled))
}

async fn space_feature(
    State(s): State<AppState>,
    c: Caller,
    Path((guid, name)): Path<(String, String)>,
) -> ApiResult<Json<Feature>> {
    let space = crate::http::spaces::require(&s, &c, &guid, Need::Read).await?;
    only_ssh(&name)?;
    let on = store::ssh::space_allowed(&s.db.pool, &space.guid).await?.unwrap_or(false);
    Ok(feature(SPACE_FEATURE, on))
}

async fn patch_space_feature(
    State(s): State<AppState>,
    c: Caller,
    Path((guid, name)): Path<(String, String)>,
    CfJson(body): CfJson<FeatureUpdate>,
) -> ApiResult<Json<Feature>> {
    let space = crate::http::spaces::require(&s, &c, &guid, Need::SpaceManager).await?;
    only_ssh(&name)?;
    rules::set_space(&s, &c, &space, body.enabled).await?;
    Ok(feature(SPACE_FEATURE, body.enabled))
}

#[derive(Deserialize)]
struct CodeQuery {
    response_type: Option<String>,
    client_id: Option<String>,
}

/// A one-time code for the SSH endpoint, as UAA's authorization-code flow answers the cf CLI:
/// a 302 to `<issuer>/login?code=...`.
async fn authorize_code(
    State(s): State<AppState>,
    c: Caller,
    Query(q): Query<CodeQuery>,
) -> ApiResult<Response> {
    if q.response_type.as_deref() != Some("code") {
        return Err(ApiError::BadRequest("response_type must be code".into()));
    }
    if q.client_id.as_deref() != Some(wire::ssh::OAUTH_CLIENT) {
        return Err(ApiError::BadRequest(format!(
            "client_id must be {}: codes are issued for the SSH endpoint only",
            wire::ssh::OAUTH_CLIENT
        )));
    }
    if c.claims.user_id.is_none() {
        return Err(ApiError::NotAuthorized);
    }
    let code = rules::issue_code(&s, &c).await?;
    let base = s.config.external_url.trim_end_matches('/');
    let location = format!("{base}/login?code={code}");
    Ok((StatusCode::FOUND, [(header::LOCATION, location)]).into_response())
}

/// The SSH endpoint redeems a code for an instance.
async fn redeem(State(s): State<AppState>, _c: Component, Json(req): Json<Authorize>) -> Response {
    match rules::authorize(&s, &req).await {
        Ok(ok) => Json(ok).into_response(),
        Err(Refusal::Api(e)) => e.into_response(),
        Err(r) => {
            let status = match r {
                Refusal::BadCode => StatusCode::UNAUTHORIZED,
                Refusal::NotFound(_) | Refusal::NotRunning { .. } => StatusCode::NOT_FOUND,
                _ => StatusCode::FORBIDDEN,
            };
            (status, Json(Refused { error: r.to_string() })).into_response()
        }
    }
}
