//! Forged and stale tokens are refused with 401 and the CF error body, on both engines:
//! `alg: none`, another key, expired, a tampered payload, another issuer, no audience.

use axum::http::StatusCode;
use base64::Engine as _;
use sqlx::Row as _;
use testkit::{Engine, TestDb};

use crate::harness::{self, Client};

async fn platform_key(db: &TestDb) -> jsonwebtoken::EncodingKey {
    let pool = sqlx::AnyPool::connect(&db.url).await.expect("connect");
    let row = sqlx::query("SELECT value FROM platform_settings WHERE name = 'token_signing_key'")
        .fetch_one(&pool)
        .await
        .expect("key");
    let pem: String = row.try_get("value").expect("pem");
    jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).expect("rsa pem")
}

fn claims(iss: &str, exp_in: i64, aud: &[&str]) -> auth::Claims {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    auth::Claims {
        jti: "j".into(),
        sub: "x".into(),
        user_id: Some("x".into()),
        user_name: Some("mallory".into()),
        email: None,
        origin: Some("uaa".into()),
        client_id: "cf".into(),
        cid: "cf".into(),
        grant_type: "password".into(),
        scope: vec!["cloud_controller.admin".into(), "cloud_controller.read".into()],
        aud: aud.iter().map(|a| (*a).to_owned()).collect(),
        iss: iss.into(),
        iat: now,
        exp: now + exp_in,
    }
}

fn sign(key: &jsonwebtoken::EncodingKey, c: &auth::Claims) -> String {
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    h.kid = Some("key-1".into());
    jsonwebtoken::encode(&h, c, key).expect("sign")
}

#[tokio::test]
async fn forged_tokens_get_401_invalid_auth_token() {
    for engine in Engine::ALL {
        let db = TestDb::new(engine).await.expect("db");
        let p = harness::start(&db, |_| {}).await;
        let issuer = format!("{}/oauth/token", p.url);
        let key = platform_key(&db).await;
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);

        let good = sign(&key, &claims(&issuer, 600, &["cloud_controller"]));
        assert_eq!(
            Client::new(&p.url, &good).get("/v3/organizations").await.0,
            StatusCode::OK,
            "the control token works"
        );

        let alg_none = format!(
            "{}.{}.",
            b64(br#"{"alg":"none","typ":"JWT"}"#),
            b64(&serde_json::to_vec(&claims(&issuer, 600, &["cloud_controller"])).expect("json"))
        );
        let other_key =
            testkit::tokens::Issuer::new("key-1", &issuer).token(&["cloud_controller.admin"], 600);
        let expired = sign(&key, &claims(&issuer, -120, &["cloud_controller"]));
        let wrong_iss =
            sign(&key, &claims("http://evil.example/oauth/token", 600, &["cloud_controller"]));
        let no_aud = sign(&key, &claims(&issuer, 600, &["openid"]));
        let tampered = {
            let user = harness::password_token(&p.url, "admin", "admin-secret-pw").await;
            let parts: Vec<&str> = user.split('.').collect();
            let mut payload: serde_json::Value = serde_json::from_slice(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(parts[1]).expect("b64"),
            )
            .expect("json");
            payload["user_name"] = "someone-else".into();
            format!(
                "{}.{}.{}",
                parts[0],
                b64(&serde_json::to_vec(&payload).expect("json")),
                parts[2]
            )
        };
        for (what, token) in [
            ("alg none", alg_none),
            ("another key", other_key.trim_start_matches("bearer ").to_owned()),
            ("expired", expired),
            ("another issuer", wrong_iss),
            ("no cloud_controller audience", no_aud),
            ("tampered payload", tampered),
            ("garbage", "not.a.jwt".to_owned()),
        ] {
            let (st, e) = Client::new(&p.url, &token).get("/v3/organizations").await;
            assert_eq!(st, StatusCode::UNAUTHORIZED, "{what}: {e}");
            assert_eq!(e["errors"][0]["code"], 1000, "{what}");
            assert_eq!(e["errors"][0]["title"], "CF-InvalidAuthToken", "{what}");
        }
        let res = reqwest::get(format!("{}/v3/organizations", p.url)).await.expect("get");
        assert_eq!(res.status(), 401);
        let e: serde_json::Value = res.json().await.expect("json");
        assert_eq!(e["errors"][0]["title"], "CF-NotAuthenticated");
        p.stop().await;
    }
}
