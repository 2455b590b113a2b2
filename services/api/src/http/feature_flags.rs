//! Feature flags (`/v3/feature_flags`): any signed-in user reads them, an admin changes them.
//! The flags and their checks are in [`crate::domain::feature_flags`].

use axum::extract::{Path, RawQuery, State};
use axum::routing::get;
use axum::{Json, Router};
use wire::v3::{timestamp, FeatureFlag, FeatureFlagUpdate, Link, Page};

use crate::access::Caller;
use crate::domain::feature_flags::{self as flags, State as FlagState};
use crate::error::ApiResult;
use crate::http::extract::CfJson;
use crate::http::list::Query;
use crate::http::util::links;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/feature_flags", get(list))
        .route("/v3/feature_flags/{name}", get(show).patch(update))
}

fn present(s: &AppState, f: &FlagState) -> FeatureFlag {
    let name = f.flag.name();
    FeatureFlag {
        name: name.to_owned(),
        enabled: f.enabled,
        updated_at: f.updated_at.map(timestamp),
        custom_error_message: f.custom_error_message.clone(),
        links: links([("self", Link::new(format!("{}/feature_flags/{name}", s.v3())))]),
    }
}

async fn list(
    State(s): State<AppState>,
    _c: Caller,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Page<FeatureFlag>>> {
    let q = Query::parse(&s, q.as_deref(), "feature_flags", &[], &["name"])?;
    let mut all: Vec<FeatureFlag> = flags::list(&s).await?.iter().map(|f| present(&s, f)).collect();
    // By name unless `updated_at` is asked for (flags never changed first).
    let (field, descending) = q.order();
    if field == "updated_at" {
        all.sort_by(|a, b| (&a.updated_at, &a.name).cmp(&(&b.updated_at, &b.name)));
    } else {
        all.sort_by(|a, b| a.name.cmp(&b.name));
    }
    if descending {
        all.reverse();
    }
    Ok(Json(q.page_of(all)))
}

async fn show(
    State(s): State<AppState>,
    _c: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<FeatureFlag>> {
    Ok(Json(present(&s, &flags::get(&s, &name).await?)))
}

async fn update(
    State(s): State<AppState>,
    c: Caller,
    Path(name): Path<String>,
    CfJson(body): CfJson<FeatureFlagUpdate>,
) -> ApiResult<Json<FeatureFlag>> {
    let f = flags::update(&s, &c, &name, body.enabled, body.custom_error_message).await?;
    Ok(Json(present(&s, &f)))
}
