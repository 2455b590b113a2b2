//! Quotas as an admin and an org manager change them, on both engines: CC's `per_app_tasks`
//! bounding the tasks one app runs at once, org quota deletion, space quota changes.

use axum::http::StatusCode;
use serde_json::{json, Value};
use testkit::{Engine, TestDb};

use crate::harness::{self, Client};
use crate::tenancy::{create_user, role};

fn guid(v: &Value) -> String {
    v["guid"].as_str().expect("guid").to_owned()
}

async fn task(c: &Client, app: &str) -> (StatusCode, Value) {
    c.post(&format!("/v3/apps/{app}/tasks"), json!({"command": "rake db:migrate"})).await
}

/// The scheduler reports the task's end.
async fn finish(p: &harness::Platform, task: &str) {
    let token = harness::component_token(&p.url).await;
    let res = reqwest::Client::new()
        .post(format!("{}/internal/v4/tasks/{task}/completed", p.url))
        .bearer_auth(token)
        .json(&json!({"task_guid": task, "failed": false}))
        .send()
        .await
        .expect("callback");
    assert!(res.status().is_success(), "{}", res.status());
}

#[tokio::test]
async fn quotas_bound_tasks_per_app_and_change_or_go() {
    for engine in Engine::ALL {
        let db = TestDb::new(engine).await.expect("db");
        let p = harness::start(&db, |_| {}).await;
        let admin = Client::new(&p.url, &p.admin_token);
        let (org, space) = crate::push::org_and_space(&admin, "acme").await;
        let (st, app) = admin
            .post(
                "/v3/apps",
                json!({"name": "web", "relationships": {"space": {"data": {"guid": space}}}}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{app}");
        let app = guid(&app);
        let (_, droplet) = crate::push::push_bits(&admin, &app, &[("app.py", b"print(1)")]).await;
        let (st, d) = admin
            .patch(
                &format!("/v3/apps/{app}/relationships/current_droplet"),
                json!({"data": {"guid": droplet}}),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{d}");

        // An org quota with one task per app.
        let (st, q) = admin
            .post("/v3/organization_quotas", json!({"name": "one-task", "apps": {"per_app_tasks": 1}, "relationships": {"organizations": {"data": [{"guid": org}]}}}))
            .await;
        assert_eq!(st, StatusCode::CREATED, "{q}");
        assert_eq!(q["apps"]["per_app_tasks"], 1, "{q}");
        let quota = guid(&q);
        let (st, first) = task(&admin, &app).await;
        assert_eq!(st, StatusCode::ACCEPTED, "{first}");
        assert_eq!(first["state"], "RUNNING", "{first}");
        let (st, e) = task(&admin, &app).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert!(
            e["errors"][0]["detail"]
                .as_str()
                .expect("detail")
                .starts_with("Task quota exceeded: the organization's limit of 1 running tasks"),
            "{e}"
        );
        let (_, tasks) = admin.get(&format!("/v3/apps/{app}/tasks")).await;
        assert_eq!(tasks["pagination"]["total_results"], 1, "a refused task is not kept: {tasks}");
        finish(&p, &guid(&first)).await;
        let (st, second) = task(&admin, &app).await;
        assert_eq!(st, StatusCode::ACCEPTED, "a finished task frees its place: {second}");

        // PATCH: the limits given change, the others stay; a bad value changes nothing.
        let (st, q) = admin
            .patch(
                &format!("/v3/organization_quotas/{quota}"),
                json!({"name": "two-tasks", "apps": {"per_app_tasks": 2}}),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{q}");
        assert_eq!((&q["name"], &q["apps"]["per_app_tasks"]), (&json!("two-tasks"), &json!(2)));
        let (st, e) = admin
            .patch(
                &format!("/v3/organization_quotas/{quota}"),
                json!({"apps": {"per_app_tasks": -3}}),
            )
            .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        let (st, third) = task(&admin, &app).await;
        assert_eq!(st, StatusCode::ACCEPTED, "two at once: {third}");
        finish(&p, &guid(&second)).await;
        finish(&p, &guid(&third)).await;

        // A space quota narrows it; its org's manager changes it.
        let (st, sq) = admin
            .post("/v3/space_quotas", json!({"name": "no-tasks", "apps": {"per_app_tasks": 0}, "relationships": {"organization": {"data": {"guid": org}}, "spaces": {"data": [{"guid": space}]}}}))
            .await;
        assert_eq!(st, StatusCode::CREATED, "{sq}");
        let sq = guid(&sq);
        let (st, e) = task(&admin, &app).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert!(e["errors"][0]["detail"]
            .as_str()
            .expect("detail")
            .contains("the space's limit of 0"));
        create_user(&admin, "olga").await;
        create_user(&admin, "dev").await;
        assert_eq!(
            role(&admin, "organization_manager", "olga", ("organization", &org)).await.0,
            201
        );
        assert_eq!(role(&admin, "organization_user", "dev", ("organization", &org)).await.0, 201);
        assert_eq!(role(&admin, "space_developer", "dev", ("space", &space)).await.0, 201);
        let olga = Client::new(&p.url, &harness::password_token(&p.url, "olga", "olga-pw").await);
        let dev = Client::new(&p.url, &harness::password_token(&p.url, "dev", "dev-pw").await);
        let (st, e) = dev
            .patch(&format!("/v3/space_quotas/{sq}"), json!({"apps": {"per_app_tasks": 5}}))
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{e}");
        let (st, changed) = olga
            .patch(&format!("/v3/space_quotas/{sq}"), json!({"name": "tasks-ok", "apps": {"per_app_tasks": 5}, "routes": {"total_routes": 3}}))
            .await;
        assert_eq!(st, StatusCode::OK, "{changed}");
        assert_eq!(changed["apps"]["per_app_tasks"], 5);
        assert_eq!(changed["routes"]["total_routes"], 3);
        assert_eq!(changed["relationships"]["spaces"]["data"][0]["guid"], space.as_str());
        let (st, e) = olga.patch(&format!("/v3/space_quotas/{sq}"), json!({"name": ""})).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        let (st, e) = olga.patch(&format!("/v3/space_quotas/{sq}"), json!({"name": 7})).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        let (st, e) = olga.patch(&format!("/v3/space_quotas/{sq}"), json!("not an object")).await;
        assert!(st.is_client_error(), "{e}");
        let (_, still) = olga.get(&format!("/v3/space_quotas/{sq}")).await;
        assert_eq!(still["name"], "tasks-ok", "{still}");
        let (st, _) = task(&dev, &app).await;
        assert_eq!(st, StatusCode::ACCEPTED, "the org's two per app now bound it");

        // Deleting an org quota: only an admin, never the default, never one still applied.
        let (st, e) = olga
            .send(reqwest::Method::DELETE, &format!("/v3/organization_quotas/{quota}"), None)
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{e}");
        let (st, e) = admin
            .send(reqwest::Method::DELETE, &format!("/v3/organization_quotas/{quota}"), None)
            .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert!(e["errors"][0]["detail"]
            .as_str()
            .expect("detail")
            .contains("give them another quota"));
        let (st, e) =
            admin.send(reqwest::Method::DELETE, "/v3/organization_quotas/default", None).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        let (st, r) = admin
            .post(
                "/v3/organization_quotas/default/relationships/organizations",
                json!({"data": [{"guid": org}]}),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{r}");
        let job = admin.delete_job(&format!("/v3/organization_quotas/{quota}")).await;
        assert_eq!(job["state"], "COMPLETE", "{job}");
        let (st, _) = admin.get(&format!("/v3/organization_quotas/{quota}")).await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        p.stop().await;
    }
}
