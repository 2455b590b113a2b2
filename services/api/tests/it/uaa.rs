//! Logging in as the cf CLI does, refreshing, component tokens, lockout, key persistence.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use testkit::{Engine, TestDb};

struct Api {
    url: String,
    shutdown: kit::Shutdown,
    task: tokio::task::JoinHandle<Result<(), api::Error>>,
}

async fn start(db: &TestDb, data: &std::path::Path) -> Api {
    // Reserve a port so the issuer (external_url) is known before the api starts.
    let port = testkit::free_port();
    let config = api::Config {
        addr: format!("127.0.0.1:{port}").parse().expect("addr"),
        external_url: format!("http://127.0.0.1:{port}"),
        data_dir: data.to_owned(),
        database_url: db.url.clone(),
        admin_password: Some("admin-secret-pw".into()),
        internal_client_secret: "component-secret".into(),
        ..Default::default()
    };
    let bus: bus::DynBus = Arc::new(bus::InProcessBus::new());
    let service =
        api::build(config, api::Deps { bus, bundled_buildpacks: Vec::new() }).await.expect("build");
    let url = format!("http://{}", service.local_addr());
    let shutdown = kit::Shutdown::new();
    let task = tokio::spawn(service.run(shutdown.clone()));
    testkit::wait_http_ok(&format!("{url}/readyz"), Duration::from_secs(10)).await.expect("ready");
    Api { url, shutdown, task }
}

impl Api {
    async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}

async fn password_grant(url: &str, user: &str, pw: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{url}/oauth/token"))
        .basic_auth("cf", Some(""))
        .header("accept", "application/json")
        .form(&[("grant_type", "password"), ("username", user), ("password", pw)])
        .send()
        .await
        .expect("token request")
}

#[tokio::test]
async fn cf_cli_login_refresh_and_verification() {
    for engine in Engine::ALL {
        let db = TestDb::new(engine).await.expect("db");
        let data = tempfile::tempdir().expect("tempdir");
        let api = start(&db, data.path()).await;

        let prompts: serde_json::Value = reqwest::Client::new()
            .get(format!("{}/login", api.url))
            .header("accept", "application/json")
            .send()
            .await
            .expect("login")
            .json()
            .await
            .expect("json");
        assert_eq!(prompts["prompts"]["password"][0], "password");

        let res = password_grant(&api.url, "admin", "admin-secret-pw").await;
        assert_eq!(res.status(), 200, "{engine:?}");
        let body: serde_json::Value = res.json().await.expect("json");
        assert_eq!(body["token_type"], "bearer");
        let access = body["access_token"].as_str().expect("access").to_owned();
        let refresh = body["refresh_token"].as_str().expect("refresh").to_owned();

        // Any service verifies it with the published keys.
        let verifier = auth::Verifier::from_url(
            format!("{}/oauth/token", api.url),
            None,
            format!("{}/token_keys", api.url),
        );
        let claims = verifier.verify(&format!("bearer {access}")).await.expect("valid token");
        assert_eq!(claims.user_name.as_deref(), Some("admin"));
        assert_eq!(claims.origin.as_deref(), Some("uaa"));
        assert!(claims.is_admin() && claims.has_scope("cloud_controller.read"));

        let res = reqwest::Client::new()
            .post(format!("{}/oauth/token", api.url))
            .basic_auth("cf", Some(""))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
            .send()
            .await
            .expect("refresh");
        assert_eq!(res.status(), 200);
        let res = reqwest::Client::new()
            .post(format!("{}/oauth/token", api.url))
            .basic_auth("cf", Some(""))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", "nonsense")])
            .send()
            .await
            .expect("refresh");
        assert_eq!(res.status(), 401);
        let body: serde_json::Value = res.json().await.expect("json");
        assert_eq!(body["error"], "invalid_token");

        let userinfo: serde_json::Value = reqwest::Client::new()
            .get(format!("{}/userinfo", api.url))
            .bearer_auth(&access)
            .send()
            .await
            .expect("userinfo")
            .json()
            .await
            .expect("json");
        assert_eq!(userinfo["user_name"], "admin");
        let root: serde_json::Value =
            reqwest::get(format!("{}/", api.url)).await.expect("root").json().await.expect("json");
        assert_eq!(root["links"]["cloud_controller_v3"]["meta"]["version"], "3.180.0");
        assert_eq!(root["links"]["login"]["href"], api.url.as_str());
        let res = reqwest::get(format!("{}/v3/nonsense", api.url)).await.expect("get");
        assert_eq!(res.status(), 404);
        let body: serde_json::Value = res.json().await.expect("json");
        assert_eq!(body["errors"][0]["title"], "CF-NotFound");
        api.stop().await;
    }
}

#[tokio::test]
async fn bad_passwords_lock_the_account() {
    for engine in Engine::ALL {
        let db = TestDb::new(engine).await.expect("db");
        let data = tempfile::tempdir().expect("tempdir");
        let api = start(&db, data.path()).await;
        let res = password_grant(&api.url, "admin", "wrong").await;
        assert_eq!(res.status(), 401, "{engine:?}");
        let body: serde_json::Value = res.json().await.expect("json");
        assert_eq!(
            (body["error"].as_str(), body["error_description"].as_str()),
            (Some("unauthorized"), Some("Bad credentials"))
        );
        let res = password_grant(&api.url, "nobody", "wrong").await;
        assert_eq!(res.status(), 401, "unknown users look the same");
        for _ in 0..4 {
            password_grant(&api.url, "admin", "wrong").await;
        }
        let res = password_grant(&api.url, "admin", "admin-secret-pw").await;
        assert_eq!(res.status(), 401);
        let body: serde_json::Value = res.json().await.expect("json");
        assert_eq!(
            body["error_description"],
            "Your account has been locked because of too many failed attempts to login."
        );
        api.stop().await;
    }
}

#[tokio::test]
async fn components_get_client_credentials_tokens() {
    let db = TestDb::new(Engine::Sqlite).await.expect("db");
    let data = tempfile::tempdir().expect("tempdir");
    let api = start(&db, data.path()).await;
    let source = auth::ClientCredentials::new(
        format!("{}/oauth/token", api.url),
        "paas-internal",
        "component-secret",
    );
    let token = source.token().await.expect("component token");
    let verifier = auth::Verifier::from_url(
        format!("{}/oauth/token", api.url),
        None,
        format!("{}/token_keys", api.url),
    );
    let claims = verifier.verify(&token).await.expect("valid");
    assert!(claims.is_internal() && claims.user_name.is_none());
    let wrong =
        auth::ClientCredentials::new(format!("{}/oauth/token", api.url), "paas-internal", "guess");
    assert!(wrong.token().await.is_err());
    let public = reqwest::Client::new()
        .post(format!("{}/oauth/token", api.url))
        .basic_auth("cf", Some(""))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("send");
    assert_eq!(public.status(), 401, "public clients get no component tokens");
    api.stop().await;
}

#[tokio::test]
async fn signing_keys_survive_a_restart() {
    for engine in Engine::ALL {
        let db = TestDb::new(engine).await.expect("db");
        let data = tempfile::tempdir().expect("tempdir");
        let first = start(&db, data.path()).await;
        let keys1: auth::Jwks = reqwest::get(format!("{}/token_keys", first.url))
            .await
            .expect("keys")
            .json()
            .await
            .expect("json");
        first.stop().await;
        let second = start(&db, data.path()).await;
        let keys2: auth::Jwks = reqwest::get(format!("{}/token_keys", second.url))
            .await
            .expect("keys")
            .json()
            .await
            .expect("json");
        assert_eq!(keys1, keys2, "{engine:?}");
        second.stop().await;
    }
}

/// cf passwd: a user changes their own password proving the old one; an admin sets anyone's;
/// nobody changes another user's.
#[tokio::test]
async fn users_change_their_password_and_admins_reset_them() {
    for engine in Engine::ALL {
        let db = TestDb::new(engine).await.expect("db");
        let p = crate::harness::start(&db, |_| {}).await;
        let admin = crate::harness::Client::new(&p.url, &p.admin_token);
        let amy = crate::tenancy::create_user(&admin, "amy").await;
        let bob = crate::tenancy::create_user(&admin, "bob").await;
        let amy_token = crate::harness::password_token(&p.url, "amy", "amy-pw").await;
        let put = |token: String, id: String, body: serde_json::Value| {
            let url = format!("{}/Users/{id}/password", p.url);
            async move {
                let res = reqwest::Client::new()
                    .put(url)
                    .bearer_auth(token)
                    .json(&body)
                    .send()
                    .await
                    .expect("put");
                let st = res.status().as_u16();
                (st, res.json::<serde_json::Value>().await.unwrap_or_default())
            }
        };
        let (st, e) = put(
            amy_token.clone(),
            amy.clone(),
            json!({"oldPassword": "wrong", "password": "amy-new"}),
        )
        .await;
        assert_eq!(st, 401, "{e}");
        assert_eq!(e["error_description"], "Old password is incorrect");
        let (st, _) = put(amy_token.clone(), amy.clone(), json!({"password": "amy-new"})).await;
        assert_eq!(st, 422, "the old password is required");
        let (st, e) = put(
            amy_token.clone(),
            amy.clone(),
            json!({"oldPassword": "amy-pw", "password": "amy-pw"}),
        )
        .await;
        assert_eq!(st, 422, "{e}");
        let (st, e) = put(
            amy_token.clone(),
            bob.clone(),
            json!({"oldPassword": "bob-pw", "password": "taken"}),
        )
        .await;
        assert_eq!(st, 403, "another user's: {e}");
        let (st, e) = put("not-a-token".into(), amy.clone(), json!({"password": "x"})).await;
        assert_eq!(st, 401, "{e}");
        let (st, ok) =
            put(amy_token, amy.clone(), json!({"oldPassword": "amy-pw", "password": "amy-new"}))
                .await;
        assert_eq!((st, &ok["status"]), (200, &json!("ok")), "{ok}");
        assert_eq!(
            password_grant(&p.url, "amy", "amy-pw").await.status(),
            401,
            "the old one is gone"
        );
        assert_eq!(password_grant(&p.url, "amy", "amy-new").await.status(), 200);
        let (st, _) =
            put(p.admin_token.clone(), bob.clone(), json!({"password": "reset-by-admin"})).await;
        assert_eq!(st, 200, "an admin resets without the old password");
        assert_eq!(password_grant(&p.url, "bob", "reset-by-admin").await.status(), 200);
        let (st, _) =
            put(p.admin_token.clone(), "no-such-user".into(), json!({"password": "x"})).await;
        assert_eq!(st, 404);
        p.stop().await;
    }
}
