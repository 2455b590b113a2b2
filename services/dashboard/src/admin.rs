//! Operators' pages: cells with their capacity and placed instances (from the scheduler, with
//! the dashboard's component token), the router's route table, every component's readiness and
//! the platform components' own logs (from the logs service, with the operator's own token).
//! Only sessions of admins reach them.

use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::web::{guard, json_error, Refused};
use crate::{logs, AppState};

/// Why a request to an operators' page is refused.
enum NotAdmin {
    /// No session, or no CSRF token: what every endpoint answers.
    Refused(Refused),
    /// Signed in, but not as an admin (403).
    Forbidden,
}

impl IntoResponse for NotAdmin {
    fn into_response(self) -> Response {
        match self {
            NotAdmin::Refused(r) => r.into_response(),
            NotAdmin::Forbidden => json_error(StatusCode::FORBIDDEN, "for platform operators only"),
        }
    }
}

/// The refusal for anyone but a signed-in admin; `Ok` lets the request through, with the
/// session's id.
fn unless_admin(state: &AppState, headers: &HeaderMap) -> Result<String, NotAdmin> {
    match guard(state, headers, &Method::GET) {
        Err(r) => Err(NotAdmin::Refused(r)),
        Ok((_, s)) if !s.admin => Err(NotAdmin::Forbidden),
        Ok((id, _)) => Ok(id),
    }
}

async fn get_json(state: &AppState, url: &str, token: Option<&str>) -> Result<Value, String> {
    let mut req = state.http.get(url).timeout(Duration::from_secs(5));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.map_err(|e| e.to_string())?;
    if !res.status().is_success() {
        return Err(format!("{url}: {}", res.status()));
    }
    res.json().await.map_err(|e| e.to_string())
}

/// `path` at whichever scheduler answers (a standby serves reads too).
async fn scheduler_json(state: &AppState, path: &str, token: &str) -> Result<Value, String> {
    let build = |url| state.http.get(url).timeout(Duration::from_secs(5)).bearer_auth(token);
    let res = state.scheduler.send(path, build).await.map_err(|e| e.to_string())?;
    if !res.status().is_success() {
        return Err(format!("the scheduler answered {} to {path}", res.status()));
    }
    res.json().await.map_err(|e| e.to_string())
}

/// Each cell's presence (capacity, zone, stacks, last heartbeat) with the instances placed on it.
pub(crate) async fn cells(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = unless_admin(&state, &headers) {
        return r.into_response();
    }
    let Some(tokens) = &state.components else {
        return json_error(StatusCode::SERVICE_UNAVAILABLE, "no component credentials configured");
    };
    let token = match tokens.token().await {
        Ok(t) => t,
        Err(e) => return json_error(StatusCode::BAD_GATEWAY, &e.to_string()),
    };
    let (cells, actual) = tokio::join!(
        scheduler_json(&state, "/v1/cells", &token),
        scheduler_json(&state, "/v1/actual_lrps", &token),
    );
    let (cells, actual) = match (cells, actual) {
        (Ok(c), Ok(a)) => (c, a),
        (Err(e), _) | (_, Err(e)) => return json_error(StatusCode::BAD_GATEWAY, &e),
    };
    let actual = actual.as_array().cloned().unwrap_or_default();
    let out: Vec<Value> = cells
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|c| {
            let id = c["presence"]["cell_id"].as_str().unwrap_or("").to_owned();
            let placed: Vec<Value> = actual
                .iter()
                .filter(|a| a["cell_id"].as_str() == Some(id.as_str()))
                .map(|a| {
                    json!({
                        "process_guid": a["process_guid"],
                        "index": a["index"],
                        "state": a["state"],
                        "since": a["since"],
                    })
                })
                .collect();
            json!({
                "cell_id": id,
                "zone": c["presence"]["zone"],
                "capacity": c["presence"]["capacity"],
                "stacks": c["presence"]["stacks"],
                "evacuating": c["presence"]["evacuating"],
                "last_seen": c["last_seen"],
                "instances": placed,
            })
        })
        .collect();
    Json(json!({ "cells": out })).into_response()
}

/// The router's table: `host[/path]` → endpoints.
pub(crate) async fn routes(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = unless_admin(&state, &headers) {
        return r.into_response();
    }
    let url = format!("{}/routes", state.cfg.router_status_url.trim_end_matches('/'));
    match get_json(&state, &url, None).await {
        Ok(v) => Json(json!({ "routes": v })).into_response(),
        Err(e) => json_error(StatusCode::BAD_GATEWAY, &e),
    }
}

/// `/readyz` of every configured component.
pub(crate) async fn health(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = unless_admin(&state, &headers) {
        return r.into_response();
    }
    let checks = state.cfg.health_checks.iter().filter_map(|c| c.split_once('=')).map(|(n, u)| {
        let state = state.clone();
        async move {
            let url = format!("{}/readyz", u.trim_end_matches('/'));
            let res = state.http.get(&url).timeout(Duration::from_secs(3)).send().await;
            let (ready, detail) = match res {
                Ok(r) => {
                    let ok = r.status().is_success();
                    (ok, r.text().await.unwrap_or_default().trim().to_owned())
                }
                Err(e) => (false, format!("unreachable: {e}")),
            };
            json!({ "name": n, "url": u, "ready": ready, "detail": detail })
        }
    });
    let out = futures::future::join_all(checks).await;
    Json(json!({ "components": out })).into_response()
}

/// The platform's log sources the operator may read (`api`, `cell/<id>`, `router/<index>`, ...):
/// the logs service's sources that are not apps.
pub(crate) async fn log_sources(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match unless_admin(&state, &headers) {
        Ok(id) => logs::sources(&state, &id).await,
        Err(r) => r.into_response(),
    }
}

const BAD_SOURCE: &str =
    "invalid source id: letters, digits, -, _, . and / only, at most 128 characters, no ..";

/// `?source=<id>`: one platform source's lines, live, as the app pages get theirs.
pub(crate) async fn log_stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let id = match unless_admin(&state, &headers) {
        Ok(id) => id,
        Err(r) => return r.into_response(),
    };
    let source = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "source")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    if !logs::valid_source(&source) {
        return json_error(StatusCode::BAD_REQUEST, BAD_SOURCE);
    }
    logs::relay(&state, &headers, &id, &source, Default::default(), "source not found").await
}
