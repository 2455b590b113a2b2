//! The root documents clients discover the platform from: `GET /`,
//! `GET /v3`, `GET /v3/info`. No authentication.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use wire::v3::root::{Info, Root, RootLinks, SshLink, SshMeta, V3Root, Version, VersionedLink};
use wire::v3::{Link, Links};

use crate::AppState;

/// The CC API version we advertise: new enough for the cf CLI v8, below feature gates we do
/// not implement (docs/api.md).
pub const CC_API_VERSION: &str = "3.180.0";

pub fn routes(state: AppState) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/v3", get(v3))
        .route("/v3/info", get(info))
        .with_state(state)
}

async fn root(State(s): State<AppState>) -> Json<Root> {
    let api = s.config.external_url.trim_end_matches('/').to_owned();
    let logs = s.config.logs_url.trim_end_matches('/').to_owned();
    let ws = logs.replacen("http", "ws", 1);
    let app_ssh = (!s.config.ssh_endpoint.is_empty()).then(|| SshLink {
        href: s.config.ssh_endpoint.clone(),
        meta: SshMeta {
            host_key_fingerprint: s.config.ssh_host_key_fingerprint.clone(),
            oauth_client: wire::ssh::OAUTH_CLIENT.into(),
        },
    });
    Json(Root {
        links: RootLinks {
            this: Some(Link::new(api.clone())),
            cloud_controller_v3: Some(VersionedLink {
                href: format!("{api}/v3"),
                meta: Version { version: CC_API_VERSION.into() },
            }),
            login: Some(Link::new(api.clone())),
            uaa: Some(Link::new(api)),
            logging: Some(Link::new(ws)),
            log_cache: Some(Link::new(logs.clone())),
            log_stream: Some(Link::new(logs)),
            app_ssh,
            ..RootLinks::default()
        },
    })
}

async fn v3(State(s): State<AppState>) -> Json<V3Root> {
    let base = format!("{}/v3", s.config.external_url.trim_end_matches('/'));
    let names = [
        "app_usage_events",
        "apps",
        "audit_events",
        "buildpacks",
        "builds",
        "deployments",
        "domains",
        "droplets",
        "feature_flags",
        "info",
        "isolation_segments",
        "organizations",
        "organization_quotas",
        "packages",
        "processes",
        "resource_matches",
        "roles",
        "routes",
        "service_brokers",
        "service_credential_bindings",
        "service_instances",
        "service_offerings",
        "service_plans",
        "service_route_bindings",
        "service_usage_events",
        "spaces",
        "space_quotas",
        "stacks",
        "tasks",
        "users",
    ];
    let mut links = Links::new();
    links.insert("self".into(), Link::new(base.clone()));
    for n in names {
        links.insert(n.into(), Link::new(format!("{base}/{n}")));
    }
    Json(V3Root { links })
}

async fn info(State(s): State<AppState>) -> Json<Info> {
    let base = format!("{}/v3/info", s.config.external_url.trim_end_matches('/'));
    let mut links = Links::new();
    links.insert("self".into(), Link::new(base));
    links.insert("support".into(), Link::new(""));
    Json(Info { description: "paas".into(), name: "paas".into(), links, ..Info::default() })
}
