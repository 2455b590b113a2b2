//! The real access decision: tokens verified against keys published at `<api>/token_keys`,
//! app access asked of `<api>/internal/v4/log_access/<guid>` — played here by a small server
//! with keys made in the test.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use base64::Engine as _;
use logs::access::{Access, ApiAccess};
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::traits::PublicKeyParts as _;

const APP: &str = "6f1c2c3e-8d34-4a9e-9a5e-1c0b2d3e4f50";
const OTHER_APP: &str = "0a1b2c3d-0000-4000-8000-000000000001";

struct Keys {
    encoding: jsonwebtoken::EncodingKey,
    jwks: auth::Jwks,
}

fn keys(kid: &str) -> Keys {
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("rsa key");
    let pem = key.to_pkcs1_pem(rsa::pkcs1::LineEnding::LF).expect("pem");
    let b64 = |b: Vec<u8>| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let jwk = auth::Jwk {
        kty: "RSA".into(),
        kid: kid.into(),
        alg: "RS256".into(),
        use_: "sig".into(),
        n: b64(key.n().to_bytes_be()),
        e: b64(key.e().to_bytes_be()),
        value: None,
    };
    Keys {
        encoding: jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).expect("encoding key"),
        jwks: auth::Jwks { keys: vec![jwk] },
    }
}

fn token(keys: &Keys, kid: &str, issuer: &str, scopes: &[&str], exp_in: i64) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = auth::Claims {
        jti: uuid::Uuid::new_v4().to_string(),
        sub: "u-1".into(),
        user_id: Some("u-1".into()),
        user_name: Some("dev".into()),
        email: None,
        origin: Some("uaa".into()),
        client_id: "cf".into(),
        cid: "cf".into(),
        grant_type: "password".into(),
        scope: scopes.iter().map(|s| (*s).to_owned()).collect(),
        aud: vec!["cloud_controller".into()],
        iss: issuer.into(),
        iat: now,
        exp: now + exp_in,
    };
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(kid.into());
    format!("bearer {}", jsonwebtoken::encode(&header, &claims, &keys.encoding).expect("sign"))
}

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
    let good = keys("key-1");
    let forged = keys("key-1");
    let kid = "key-1";
    let issuer = "http://api.test/oauth/token".to_owned();
    let dev = token(&good, kid, &issuer, &["cloud_controller.read", "openid"], 600);
    let api = fake_api(good.jwks.clone(), dev.clone()).await;
    let access = ApiAccess::new(
        &api,
        auth::Verifier::from_url(issuer.clone(), None, format!("{api}/token_keys")),
        Duration::from_secs(10),
    );
    let access: Arc<dyn Access> = Arc::new(access);

    let admin = token(&good, kid, &issuer, &["logs.admin"], 600);
    let expired = token(&good, kid, &issuer, &["logs.admin"], -60);
    let wrong_key = token(&forged, kid, &issuer, &["logs.admin"], 600);
    let wrong_issuer = token(&good, kid, "http://elsewhere/oauth/token", &["logs.admin"], 600);
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
