//! The real access decision: tokens verified against keys published at `<api>/token_keys`,
//! app access asked of `<api>/internal/v4/log_access/<guid>` — played here by a small server
//! with keys made in the test.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use logs::access::{Access, ApiAccess};
use testkit::tokens::Issuer;

const APP: &str = "6f1c2c3e-8d34-4a9e-9a5e-1c0b2d3e4f50";
const OTHER_APP: &str = "0a1b2c3d-0000-4000-8000-000000000001";

/// A stand-in api: publishes the keys; lets `allowed` read APP only.
async fn fake_api(jwks: auth::Jwks, allowed: String) -> String {
    let app = axum::Router::new()
        .route("/token_keys", get(move || async move { axum::Json(jwks) }))
        .route(
            "/internal/v4/log_access/{guid}",
            get(move |Path(guid): Path<String>, headers: HeaderMap| async move {
                let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
                if auth == allowed && guid == APP {
                    StatusCode::OK
                } else {
                    StatusCode::NOT_FOUND
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn decisions_follow_scopes_and_the_api() {
    let issuer = "http://api.test/oauth/token".to_owned();
    let good = Issuer::new("key-1", &issuer);
    let forged = Issuer::new("key-1", &issuer);
    let dev = good.token(&["cloud_controller.read", "openid"], 600);
    let api = fake_api(good.jwks(), dev.clone()).await;
    let access = ApiAccess::new(
        &api,
        auth::Verifier::from_url(issuer.clone(), None, format!("{api}/token_keys")),
        Duration::from_secs(10),
    );
    let access: Arc<dyn Access> = Arc::new(access);

    let admin = good.token(&["logs.admin"], 600);
    let expired = good.token(&["logs.admin"], -60);
    let wrong_key = forged.token(&["logs.admin"], 600);
    let wrong_issuer = good.token_as("http://elsewhere/oauth/token", &["logs.admin"], 600);
    let cases: [(&str, &str, &str, bool); 9] = [
        ("operator reads the platform", &admin, "api", true),
        ("operator reads any app", &admin, OTHER_APP, true),
        ("developer reads their app", &dev, APP, true),
        ("developer cannot read another tenant's app", &dev, OTHER_APP, false),
        ("developer cannot read platform logs", &dev, "router/0", false),
        ("expired token", &expired, "api", false),
        ("token signed by another key", &wrong_key, "api", false),
        ("token of another issuer", &wrong_issuer, "api", false),
        ("no token", "", APP, false),
    ];
    for (what, auth, source, want) in cases {
        assert_eq!(access.may_read(auth, source).await, want, "{what}");
    }
}
