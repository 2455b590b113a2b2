//! Sharing managed service instances into other spaces
//! (`/v3/service_instances/:guid/relationships/shared_spaces`): the apps of those spaces may
//! bind the instance, their users see it. Unsharing unbinds those apps at the broker first.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde_json::{json, Value};
use wire::v3::{Link, ToMany};

use crate::access::{Caller, Need};
use crate::domain::events::{self, Actor};
use crate::domain::feature_flags::{self as flags, Flag};
use crate::domain::managed::{self, Target};
use crate::error::{ApiError, ApiResult};
use crate::http::extract::CfJson;
use crate::http::services::require;
use crate::store::{self, now_ms};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/service_instances/{guid}/relationships/shared_spaces", get(list).post(share))
        .route("/v3/service_instances/{guid}/relationships/shared_spaces/{space}", delete(unshare))
}

fn relationship(s: &AppState, guid: &str, spaces: &[String]) -> ToMany {
    let mut rel = ToMany::of(spaces.iter().map(String::as_str));
    let href = format!("{}/service_instances/{guid}/relationships/shared_spaces", s.v3());
    rel.links.insert("self".into(), Link::new(href));
    rel
}

async fn list(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<ToMany>> {
    let (i, _) = require(&s, &c, &guid, Need::Read).await?;
    let mut visible = Vec::new();
    for sp in store::services::shared_spaces(&s.db.pool, &i.guid).await? {
        if let Some(space) = store::spaces::find(&s.db.pool, &sp).await? {
            if c.space_readable(&space.guid, &space.org_guid).await? {
                visible.push(sp);
            }
        }
    }
    Ok(Json(relationship(&s, &i.guid, &visible)))
}

async fn share(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    CfJson(req): CfJson<Value>,
) -> ApiResult<Json<ToMany>> {
    let (i, space) = require(&s, &c, &guid, Need::Developer).await?;
    flags::require(&s, &c, Flag::ServiceInstanceSharing).await?;
    let bad = |m: String| ApiError::Unprocessable(m);
    if !i.managed() {
        return Err(bad("User-provided services cannot be shared.".into()));
    }
    let t = Target::of_plan(&s, &i.plan_guid).await?;
    if !t.offering.shareable {
        return Err(bad(format!(
            "The {} service does not support service instance sharing.",
            t.offering.name
        )));
    }
    let guids: Vec<String> = req
        .get("data")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|d| d.get("guid").and_then(Value::as_str))
                .map(str::to_owned)
                .collect()
        })
        .filter(|v: &Vec<String>| !v.is_empty())
        .ok_or_else(|| bad("Data must be a list of objects with a guid".into()))?;
    for g in &guids {
        let target = store::spaces::find(&s.db.pool, g).await?;
        let ok = match &target {
            Some(sp) => {
                c.require_space(&sp.guid, &sp.org_guid, "Space", Need::Developer).await.is_ok()
            }
            None => false,
        };
        let Some(target) = target.filter(|_| ok) else {
            return Err(bad(format!(
                "Unable to share service instance {} with spaces ['{g}']. Ensure the spaces exist and that you have access to them.",
                i.name
            )));
        };
        if target.guid == space.guid {
            return Err(bad(
                "Service instances cannot be shared into the space where they were created.".into(),
            ));
        }
        if store::services::find_in_space(&s.db.pool, &target.guid, &i.name).await?.is_some() {
            return Err(bad(format!(
                "A service instance called {} already exists in {}.",
                i.name, target.name
            )));
        }
    }
    for g in &guids {
        store::services::share(&s.db.pool, &i.guid, g, now_ms()).await?;
    }
    events::record(
        &s,
        "audit.service_instance.share",
        &Actor::of(&c),
        &space.target(&i.guid, "service_instance", &i.name),
        json!({"target_space_guids": guids}),
    )
    .await;
    let all = store::services::shared_spaces(&s.db.pool, &i.guid).await?;
    Ok(Json(relationship(&s, &i.guid, &all)))
}

async fn unshare(
    State(s): State<AppState>,
    c: Caller,
    Path((guid, target)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let (i, space) = require(&s, &c, &guid, Need::Developer).await?;
    if !store::services::shared_spaces(&s.db.pool, &i.guid).await?.contains(&target) {
        return Err(ApiError::Unprocessable(format!(
            "Unable to unshare service instance from space {target}. Ensure the space exists and the service instance has been shared to this space."
        )));
    }
    // The target space's apps lose their bindings, at the broker first.
    let t = Target::of_plan(&s, &i.plan_guid).await?;
    for b in store::services::managed_bindings_of_space_apps(&s.db.pool, &target).await? {
        if b.instance_guid == i.guid {
            managed::unbind(&s, &b, &i, &t, c.guid()).await?;
        }
    }
    store::services::unshare(&s.db.pool, &i.guid, &target).await?;
    events::record(
        &s,
        "audit.service_instance.unshare",
        &Actor::of(&c),
        &space.target(&i.guid, "service_instance", &i.name),
        json!({"target_space_guid": target}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
