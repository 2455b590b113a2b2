//! App and service usage events (`/v3/app_usage_events`, `/v3/service_usage_events`), read by
//! admins and global readers (billing, metering): listed oldest first, `after_guid` for what
//! came since the last read; an admin may purge them and reseed from what runs now.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use wire::v3::usage_event::{AppUsageEvent, ServiceUsageEvent};
use wire::v3::{Link, Page};

use crate::access::Caller;
use crate::domain::usage_events::{self as usage, APP, SERVICE};
use crate::error::{ApiError, ApiResult};
use crate::http::list::{List, Table};
use crate::http::util::{links, ts};
use crate::store;
use crate::store::usage_events::Event;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/app_usage_events", get(list_app))
        .route("/v3/app_usage_events/{guid}", get(show_app))
        .route("/v3/app_usage_events/actions/destructively_purge_all_and_reseed", post(reseed_app))
        .route("/v3/service_usage_events", get(list_service))
        .route("/v3/service_usage_events/{guid}", get(show_service))
        .route(
            "/v3/service_usage_events/actions/destructively_purge_all_and_reseed",
            post(reseed_service),
        )
}

/// The event as presented: its stored body under its guid, times and link.
fn present<T: serde::de::DeserializeOwned>(s: &AppState, path: &str, e: &Event) -> ApiResult<T> {
    let mut v = e.data.clone();
    let at = ts(e.created_at);
    let link = links([("self", Link::new(format!("{}/{path}/{}", s.v3(), e.guid)))]);
    if let Some(o) = v.as_object_mut() {
        o.insert("guid".into(), e.guid.clone().into());
        o.insert("created_at".into(), at.clone().into());
        o.insert("updated_at".into(), at.into());
        o.insert("links".into(), serde_json::to_value(link).unwrap_or_default());
    }
    serde_json::from_value(v).map_err(|err| ApiError::Corrupt {
        table: "usage_events",
        id: e.guid.clone(),
        detail: err.to_string(),
    })
}

fn reader(c: &Caller) -> ApiResult<()> {
    if c.global_reader() {
        Ok(())
    } else {
        Err(ApiError::NotAuthorized)
    }
}

async fn list_of<T: serde::de::DeserializeOwned>(
    s: &AppState,
    c: &Caller,
    q: Option<&str>,
    kind: &str,
    path: &str,
) -> ApiResult<Json<Page<T>>> {
    reader(c)?;
    let table = Table::with("usage_events", store::usage_events::select(kind));
    let mut list = List::parse(s, q, path, table, &["guids", "after_guid"], &[])?
        .filter("guids", "usage_events.guid");
    if let Some(after) = list.query().filter("after_guid").and_then(|a| a.first()).cloned() {
        list.select().after(&after);
    }
    let rows = list.fetch(async |sel, w| sel.page_of(&s.db, w, Event::from_row).await).await?;
    let page = rows
        .present_async(|e| {
            let shown = present::<T>(s, path, &e);
            async move { shown }
        })
        .await?;
    Ok(Json(page))
}

async fn list_app(
    State(s): State<AppState>,
    c: Caller,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Page<AppUsageEvent>>> {
    list_of(&s, &c, q.as_deref(), APP, "app_usage_events").await
}

async fn list_service(
    State(s): State<AppState>,
    c: Caller,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Page<ServiceUsageEvent>>> {
    list_of(&s, &c, q.as_deref(), SERVICE, "service_usage_events").await
}

async fn show_of<T: serde::de::DeserializeOwned>(
    s: &AppState,
    c: &Caller,
    kind: &str,
    path: &str,
    guid: &str,
) -> ApiResult<Json<T>> {
    reader(c)?;
    let e = store::usage_events::find(&s.db.pool, kind, guid)
        .await?
        .ok_or(ApiError::NotFound("Usage event"))?;
    Ok(Json(present(s, path, &e)?))
}

async fn show_app(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<AppUsageEvent>> {
    show_of(&s, &c, APP, "app_usage_events", &guid).await
}

async fn show_service(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<ServiceUsageEvent>> {
    show_of(&s, &c, SERVICE, "service_usage_events", &guid).await
}

async fn reseed(s: &AppState, c: &Caller, kind: &str) -> ApiResult<StatusCode> {
    if !c.admin() {
        return Err(ApiError::NotAuthorized);
    }
    usage::purge_and_reseed(s, kind).await?;
    Ok(StatusCode::OK)
}

async fn reseed_app(State(s): State<AppState>, c: Caller) -> ApiResult<StatusCode> {
    reseed(&s, &c, APP).await
}

async fn reseed_service(State(s): State<AppState>, c: Caller) -> ApiResult<StatusCode> {
    reseed(&s, &c, SERVICE).await
}
