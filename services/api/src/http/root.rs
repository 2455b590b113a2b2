//! The root documents clients discover the platform from: `GET /`,
//! `GET /v3`, `GET /v3/info`. No authentication.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::AppState;

/// The CC API version we advertise: new enough for the cf CLI v8, below feature gates we do
/// not implement (see the contract).
pub const CC_API_VERSION: &str = "3.180.0";

pub fn routes(state: AppState) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/v3", get(v3))
        .route("/v3/info", get(info))
        .with_state(state)
}

fn href(url: String) -> Value {
    json!({ "href": url })
}

async fn root(State(s): State<AppState>) -> Json<Value> {
    let api = s.config.external_url.trim_end_matches('/').to_owned();
    let logs = s.config.logs_url.trim_end_matches('/').to_owned();
    let ws = logs.replacen("http", "ws", 1);
    Json(json!({ "links": {
        "self": href(api.clone()),
        "cloud_controller_v3": { "href": format!("{api}/v3"), "meta": { "version": CC_API_VERSION } },
        "network_policy_v0": null,
        "network_policy_v1": null,
        "login": href(api.clone()),
        "uaa": href(api.clone()),
        "credhub": null,
        "routing": null,
        "logging": href(ws),
        "log_cache": href(logs.clone()),
        "log_stream": href(logs),
        "app_ssh": null,
    }}))
}

async fn v3(State(s): State<AppState>) -> Json<Value> {
    let base = format!("{}/v3", s.config.external_url.trim_end_matches('/'));
    let names = [
        "apps",
        "audit_events",
        "buildpacks",
        "builds",
        "deployments",
        "domains",
        "droplets",
        "info",
        "organizations",
        "organization_quotas",
        "packages",
        "processes",
        "resource_matches",
        "roles",
        "routes",
        "service_instances",
        "spaces",
        "space_quotas",
        "stacks",
        "tasks",
        "users",
    ];
    let mut links = serde_json::Map::new();
    links.insert("self".into(), href(base.clone()));
    for n in names {
        links.insert(n.into(), href(format!("{base}/{n}")));
    }
    Json(json!({ "links": links }))
}

async fn info(State(s): State<AppState>) -> Json<Value> {
    let base = format!("{}/v3/info", s.config.external_url.trim_end_matches('/'));
    Json(json!({
        "build": "", "cli_version": {"minimum": "", "recommended": ""}, "custom": {},
        "description": "paas", "name": "paas", "version": 0, "osbapi_version": "",
        "links": {"self": href(base), "support": {"href": ""}},
    }))
}
