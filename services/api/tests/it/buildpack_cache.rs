//! Buildpack caches, on both engines: an app's developers and admins clear them with a job
//! that tells every stager (`staging.cache.delete`); others are refused; deleting an app
//! clears its cache too.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{json, Value};
use testkit::{Engine, TestDb};
use wire::staging::BuildpackCacheDelete;

use crate::harness::{self, Client};
use crate::tenancy::{create_user, login, role};

/// POST an action: status, `Location`, body.
async fn act(c: &Client, path: &str) -> (StatusCode, Option<String>, Value) {
    let res = c.http.post(c.full(path)).bearer_auth(&c.token).send().await.expect("post");
    let status = StatusCode::from_u16(res.status().as_u16()).expect("status");
    let loc = res.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let text = res.text().await.expect("body");
    (status, loc, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The next cache deletion the stagers are asked for.
async fn next(sub: &mut bus::Subscription) -> BuildpackCacheDelete {
    let msg = tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("a cache deletion in time")
        .expect("message");
    serde_json::from_slice(&msg.payload).expect("json")
}

#[tokio::test]
async fn buildpack_caches_are_cleared_by_developers_and_admins_only() {
    for engine in Engine::ALL {
        let db = TestDb::new(engine).await.expect("db");
        let p = harness::start(&db, |_| {}).await;
        let admin = Client::new(&p.url, &p.admin_token);
        let mut sub =
            p.bus.subscribe(wire::subjects::BUILDPACK_CACHE_DELETE).await.expect("subscribe");
        let (org, space) = crate::push::org_and_space(&admin, "team").await;
        let app = crate::push::app_in(&admin, &space, "web").await;
        for (user, kind) in [("dev", "space_developer"), ("aud", "space_auditor")] {
            create_user(&admin, user).await;
            assert_eq!(
                role(&admin, "organization_user", user, ("organization", &org)).await.0,
                201
            );
            assert_eq!(role(&admin, kind, user, ("space", &space)).await.0, 201);
        }
        create_user(&admin, "stranger").await;
        let (dev, aud, stranger) = (
            login(&p.url, "dev").await,
            login(&p.url, "aud").await,
            login(&p.url, "stranger").await,
        );
        let path = format!("/v3/apps/{app}/actions/clear_buildpack_cache");

        // The app's developer: 202 and a job that completes once the stagers are told.
        let (st, loc, body) = act(&dev, &path).await;
        assert_eq!(st, StatusCode::ACCEPTED, "{engine:?}: {body}");
        let job = dev.wait_job(&loc.expect("Location of the job")).await;
        assert_eq!(job["state"], "COMPLETE", "{job}");
        assert_eq!(job["operation"], "app.clear_buildpack_cache");
        assert!(job["links"]["app"]["href"].as_str().expect("app link").ends_with(&app));
        assert_eq!(next(&mut sub).await.app_guid.as_deref(), Some(app.as_str()));

        // An auditor may read the app but not clear its cache; others do not see it.
        let (st, _, e) = act(&aud, &path).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{e}");
        assert_eq!(e["errors"][0]["title"], "CF-NotAuthorized");
        let (st, _, e) = act(&stranger, &path).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{e}");
        assert_eq!(e["errors"][0]["title"], "CF-ResourceNotFound");
        let (st, _, _) = act(&dev, "/v3/apps/no-such-app/actions/clear_buildpack_cache").await;
        assert_eq!(st, StatusCode::NOT_FOUND);

        // Every app's cache: admins only.
        let (st, _, e) = act(&dev, "/v3/admin/actions/clear_buildpack_cache").await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{e}");
        let (st, loc, body) = act(&admin, "/v3/admin/actions/clear_buildpack_cache").await;
        assert_eq!(st, StatusCode::ACCEPTED, "{body}");
        let job = admin.wait_job(&loc.expect("Location")).await;
        assert_eq!(
            (&job["state"], &job["operation"]),
            (&json!("COMPLETE"), &json!("admin.clear_buildpack_cache"))
        );
        assert_eq!(next(&mut sub).await.app_guid, None, "every app's cache");

        // A deleted app's cache goes with it.
        admin.delete_job(&format!("/v3/apps/{app}")).await;
        assert_eq!(next(&mut sub).await.app_guid.as_deref(), Some(app.as_str()));
    }
}
