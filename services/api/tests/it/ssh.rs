//! SSH on both engines: the switches and `ssh_enabled`, the one-time codes (single use,
//! expiring, tied to their user) and their redemption by the SSH endpoint, which refuses
//! another tenant, a non-developer, a disabled app or space, and a stopped instance.

use axum::http::StatusCode;
use serde_json::{json, Value};
use testkit::{Engine, TestDb};

use crate::harness::{self, Client};
use crate::tenancy::{create_user, role};

/// A one-time code for the holder of `token`, from the 302's `Location`.
async fn code(url: &str, token: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let res = http
        .get(format!("{url}/oauth/authorize?response_type=code&client_id=ssh-proxy"))
        .bearer_auth(token)
        .send()
        .await
        .expect("authorize");
    assert_eq!(res.status(), StatusCode::FOUND);
    let loc = res.headers()["location"].to_str().expect("location").to_owned();
    loc.split_once("code=").expect("code in the location").1.to_owned()
}

/// The SSH endpoint's redemption: status and the refusal's words.
async fn redeem(url: &str, code: &str, process: &str, index: u32) -> (StatusCode, Value) {
    let token = harness::component_token(url).await;
    let res = reqwest::Client::new()
        .post(format!("{url}/internal/v1/ssh/authorize"))
        .bearer_auth(token)
        .json(&json!({"code": code, "process_guid": process, "index": index}))
        .send()
        .await
        .expect("redeem");
    let st = res.status();
    (st, res.json().await.unwrap_or(Value::Null))
}

fn says(v: &Value, what: &str) -> bool {
    v["error"].as_str().is_some_and(|e| e.contains(what))
}

#[tokio::test]
async fn codes_work_once_for_their_users_apps_where_ssh_is_on() {
    for engine in Engine::ALL {
        let db = TestDb::new(engine).await.expect("db");
        let p = harness::start(&db, |c| {
            c.ssh_endpoint = "ssh.example.com:2222".into();
            c.ssh_host_key_fingerprint = "SHA256:abc".into();
        })
        .await;
        let admin = Client::new(&p.url, &p.admin_token);
        let (_, root) = admin.get("/").await;
        assert_eq!(root["links"]["app_ssh"]["href"], "ssh.example.com:2222", "{root}");
        assert_eq!(root["links"]["app_ssh"]["meta"]["oauth_client"], "ssh-proxy");
        assert_eq!(root["links"]["app_ssh"]["meta"]["host_key_fingerprint"], "SHA256:abc");

        let (_, space_a) = crate::push::org_and_space(&admin, "ssh-a").await;
        let (_, space_b) = crate::push::org_and_space(&admin, "ssh-b").await;
        let (_, app) = admin
            .post(
                "/v3/apps",
                json!({"name": "web", "relationships": {"space": {"data": {"guid": space_a}}}}),
            )
            .await;
        let app = app["guid"].as_str().expect("app").to_owned();
        create_user(&admin, "dev").await;
        create_user(&admin, "auditor").await;
        create_user(&admin, "other").await;
        role(&admin, "organization_user", "dev", ("organization", &org_of(&admin, &space_a).await))
            .await;
        role(
            &admin,
            "organization_user",
            "auditor",
            ("organization", &org_of(&admin, &space_a).await),
        )
        .await;
        role(
            &admin,
            "organization_user",
            "other",
            ("organization", &org_of(&admin, &space_b).await),
        )
        .await;
        let (st, e) = role(&admin, "space_developer", "dev", ("space", &space_a)).await;
        assert_eq!(st, StatusCode::CREATED, "{e}");
        role(&admin, "space_auditor", "auditor", ("space", &space_a)).await;
        role(&admin, "space_developer", "other", ("space", &space_b)).await;
        let dev_token = harness::password_token(&p.url, "dev", "dev-pw").await;
        let dev = Client::new(&p.url, &dev_token);
        let auditor_token = harness::password_token(&p.url, "auditor", "auditor-pw").await;
        let other_token = harness::password_token(&p.url, "other", "other-pw").await;

        // On by default, for app and space alike.
        let (st, v) = dev.get(&format!("/v3/apps/{app}/ssh_enabled")).await;
        assert_eq!((st, v["enabled"].clone()), (StatusCode::OK, json!(true)), "{v}");
        let (_, f) = dev.get(&format!("/v3/apps/{app}/features/ssh")).await;
        assert_eq!(
            f,
            json!({"name": "ssh", "description": "Enable SSHing into the app.", "enabled": true})
        );
        let (_, f) = dev.get(&format!("/v3/spaces/{space_a}/features/ssh")).await;
        assert_eq!(f["enabled"], true, "{f}");

        // A valid code for a developer: every check passes; the stopped app has no instance.
        let c = code(&p.url, &dev_token).await;
        let (st, v) = redeem(&p.url, &c, &app, 0).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
        assert!(says(&v, "is not running"), "{v}");
        // Once only.
        let (st, v) = redeem(&p.url, &c, &app, 0).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
        assert!(says(&v, "ssh-code"), "{v}");
        let (st, v) = redeem(&p.url, "made-up", &app, 0).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");

        // Another tenant's app is not found; an auditor may look but not enter.
        let (st, v) = redeem(&p.url, &code(&p.url, &other_token).await, &app, 0).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
        assert!(says(&v, "no instance"), "{v}");
        let (st, v) = redeem(&p.url, &code(&p.url, &auditor_token).await, &app, 0).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
        assert!(says(&v, "space developers"), "{v}");
        // Only a developer turns the app's switch, only a space manager the space's.
        let a = Client::new(&p.url, &auditor_token);
        let (st, _) =
            a.patch(&format!("/v3/apps/{app}/features/ssh"), json!({"enabled": false})).await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        let (st, _) = dev
            .patch(&format!("/v3/spaces/{space_a}/features/ssh"), json!({"enabled": false}))
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        let (st, _) =
            Client::new(&p.url, &other_token).get(&format!("/v3/apps/{app}/features/ssh")).await;
        assert_eq!(st, StatusCode::NOT_FOUND);

        // The app turned off.
        let (st, f) =
            dev.patch(&format!("/v3/apps/{app}/features/ssh"), json!({"enabled": false})).await;
        assert_eq!((st, f["enabled"].clone()), (StatusCode::OK, json!(false)), "{f}");
        let (_, v) = dev.get(&format!("/v3/apps/{app}/ssh_enabled")).await;
        assert_eq!(v, json!({"enabled": false, "reason": "Disabled for app"}));
        let (st, v) = redeem(&p.url, &code(&p.url, &dev_token).await, &app, 0).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
        assert!(says(&v, "enable-ssh web"), "{v}");
        dev.patch(&format!("/v3/apps/{app}/features/ssh"), json!({"enabled": true})).await;

        // The space turned off (by an admin here).
        let (st, _) = admin
            .patch(&format!("/v3/spaces/{space_a}/features/ssh"), json!({"enabled": false}))
            .await;
        assert_eq!(st, StatusCode::OK);
        let (_, v) = dev.get(&format!("/v3/apps/{app}/ssh_enabled")).await;
        assert_eq!(v, json!({"enabled": false, "reason": "Disabled for space dev"}));
        let (st, v) = redeem(&p.url, &code(&p.url, &dev_token).await, &app, 0).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
        assert!(says(&v, "allow-space-ssh dev"), "{v}");

        // Codes only for the ssh-proxy client, and only with a token.
        let res = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
            .get(format!("{}/oauth/authorize?response_type=code&client_id=cf", p.url))
            .bearer_auth(&dev_token)
            .send()
            .await
            .expect("authorize");
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        let res = reqwest::get(format!(
            "{}/oauth/authorize?response_type=code&client_id=ssh-proxy",
            p.url
        ))
        .await
        .expect("authorize");
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        // Redemption is for components only.
        let res = reqwest::Client::new()
            .post(format!("{}/internal/v1/ssh/authorize", p.url))
            .bearer_auth(&dev_token)
            .json(&json!({"code": "x", "process_guid": app, "index": 0}))
            .send()
            .await
            .expect("redeem");
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        p.stop().await;
    }
}

#[tokio::test]
async fn codes_expire_and_the_platform_switch_wins() {
    for engine in Engine::ALL {
        let db = TestDb::new(engine).await.expect("db");
        let p = harness::start(&db, |c| {
            c.ssh_code_ttl_secs = 0;
            c.allow_app_ssh_access = false;
        })
        .await;
        let admin = Client::new(&p.url, &p.admin_token);
        let (_, root) = admin.get("/").await;
        assert!(root["links"]["app_ssh"].is_null(), "{root}");
        let (_, space) = crate::push::org_and_space(&admin, "ssh-x").await;
        let (_, app) = admin
            .post(
                "/v3/apps",
                json!({"name": "web", "relationships": {"space": {"data": {"guid": space}}}}),
            )
            .await;
        let app = app["guid"].as_str().expect("app").to_owned();
        let (st, v) = redeem(&p.url, &code(&p.url, &p.admin_token).await, &app, 0).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "an expired code: {v}");
        let (_, v) = admin.get(&format!("/v3/apps/{app}/ssh_enabled")).await;
        assert_eq!(v, json!({"enabled": false, "reason": "Disabled globally"}));
        p.stop().await;
    }
}

async fn org_of(admin: &Client, space: &str) -> String {
    let (_, s) = admin.get(&format!("/v3/spaces/{space}")).await;
    s["relationships"]["organization"]["data"]["guid"].as_str().expect("org").to_owned()
}
