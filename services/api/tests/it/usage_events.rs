//! App and service usage events, on both engines, as billing reads them: starts, scales, stops
//! and deletions of apps, tasks, service instances created, updated and deleted; read since
//! the last one seen; purged and reseeded by an admin; refused to others.

use axum::http::StatusCode;
use serde_json::{json, Value};
use testkit::{Engine, TestDb};

use crate::harness::{self, Client};

/// `(state, process type or task name, instances, previous instances)` of each app event.
fn app_states(page: &Value) -> Vec<(String, String, Value, Value)> {
    page["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|e| {
            let what = e["process"]["type"].as_str().or(e["task"]["name"].as_str()).unwrap_or("");
            (
                e["state"]["current"].as_str().unwrap_or("").to_owned(),
                what.to_owned(),
                e["instance_count"]["current"].clone(),
                e["instance_count"]["previous"].clone(),
            )
        })
        .collect()
}

fn row(state: &str, what: &str, now: Value, before: Value) -> (String, String, Value, Value) {
    (state.into(), what.into(), now, before)
}

#[tokio::test]
async fn usage_events_follow_apps_tasks_and_services() {
    for engine in Engine::ALL {
        let db = TestDb::new(engine).await.expect("db");
        let p = harness::start(&db, |_| {}).await;
        let admin = Client::new(&p.url, &p.admin_token);
        let (org, space) = crate::push::org_and_space(&admin, "billing").await;
        crate::tenancy::create_user(&admin, "dev").await;
        let role = crate::tenancy::role;
        assert_eq!(role(&admin, "organization_user", "dev", ("organization", &org)).await.0, 201);
        assert_eq!(role(&admin, "space_developer", "dev", ("space", &space)).await.0, 201);
        let dev = crate::tenancy::login(&p.url, "dev").await;
        let (_, app) = dev
            .post(
                "/v3/apps",
                json!({"name": "web", "relationships": {"space": {"data": {"guid": space}}}}),
            )
            .await;
        let app = app["guid"].as_str().expect("app").to_owned();
        let (_, droplet) = crate::push::push_bits(&dev, &app, &[("app.py", b"print(1)")]).await;
        dev.patch(
            &format!("/v3/apps/{app}/relationships/current_droplet"),
            json!({"data": {"guid": droplet}}),
        )
        .await;

        let (st, _) = dev.post(&format!("/v3/apps/{app}/actions/start"), json!({})).await;
        assert_eq!(st, StatusCode::OK);
        let (st, _) = dev
            .post(&format!("/v3/apps/{app}/processes/web/actions/scale"), json!({"instances": 2}))
            .await;
        assert_eq!(st, StatusCode::ACCEPTED);
        let (st, t) = dev
            .post(&format!("/v3/apps/{app}/tasks"), json!({"command": "true", "name": "migrate"}))
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{t}");
        let task = t["guid"].as_str().expect("task").to_owned();
        let token = harness::component_token(&p.url).await;
        let res = reqwest::Client::new()
            .post(format!("{}/internal/v4/tasks/{task}/completed", p.url))
            .bearer_auth(token)
            .json(&json!({"task_guid": task, "failed": false}))
            .send()
            .await
            .expect("callback");
        assert!(res.status().is_success());
        let (st, _) = dev.post(&format!("/v3/apps/{app}/actions/stop"), json!({})).await;
        assert_eq!(st, StatusCode::OK);

        let (st, all) = admin.get("/v3/app_usage_events").await;
        assert_eq!(st, StatusCode::OK, "{all}");
        // Every process has its events (the droplet's worker too, at 0 instances).
        let workers: Vec<_> = app_states(&all).into_iter().filter(|r| r.1 == "worker").collect();
        assert_eq!(
            workers,
            [
                row("STARTED", "worker", json!(0), Value::Null),
                row("STOPPED", "worker", json!(0), Value::Null)
            ]
        );
        let mut page = all.clone();
        page["resources"] = Value::Array(
            all["resources"]
                .as_array()
                .expect("events")
                .iter()
                .filter(|e| e["process"]["type"] != "worker")
                .cloned()
                .collect(),
        );
        let web = |n: i64| json!(n);
        assert_eq!(
            app_states(&page),
            [
                row("STARTED", "web", web(1), Value::Null),
                row("STARTED", "web", web(2), web(1)),
                row("TASK_STARTED", "migrate", web(1), Value::Null),
                row("TASK_STOPPED", "migrate", web(1), Value::Null),
                row("STOPPED", "web", web(2), Value::Null),
            ],
            "{page}"
        );
        let first = &page["resources"][0];
        assert_eq!(first["state"]["previous"], "STOPPED");
        assert_eq!(first["app"], json!({"guid": app, "name": "web"}));
        assert_eq!(first["space"]["name"], "dev");
        assert_eq!(first["organization"]["guid"], org.as_str());
        assert!(first["memory_in_mb_per_instance"]["current"].as_i64().expect("memory") > 0);
        assert_eq!(first["buildpack"]["name"], "test_buildpack");
        let guid = first["guid"].as_str().expect("guid").to_owned();
        let (st, one) = admin.get(&format!("/v3/app_usage_events/{guid}")).await;
        assert_eq!((st, &one["guid"]), (StatusCode::OK, &json!(guid)));
        assert!(one["links"]["self"]["href"].as_str().expect("self").ends_with(&guid));
        let (_, since) = admin.get(&format!("/v3/app_usage_events?after_guid={guid}")).await;
        let position = all["resources"]
            .as_array()
            .expect("events")
            .iter()
            .position(|e| e["guid"] == guid.as_str())
            .expect("listed");
        let later = all["resources"].as_array().expect("events").len() - position - 1;
        assert_eq!(since["pagination"]["total_results"], later, "{since}");
        assert_eq!(
            since["resources"][0]["guid"],
            all["resources"][position + 1]["guid"],
            "in order"
        );
        let (_, none) = admin.get("/v3/app_usage_events?after_guid=no-such-event").await;
        assert_eq!(none["pagination"]["total_results"], 0);
        assert_eq!(admin.get("/v3/app_usage_events/no-such-event").await.0, StatusCode::NOT_FOUND);
        assert_eq!(
            dev.get("/v3/app_usage_events").await.0,
            StatusCode::FORBIDDEN,
            "admins and global readers only"
        );
        assert_eq!(admin.get("/v3/app_usage_events?colour=red").await.0, StatusCode::BAD_REQUEST);

        // Service instances.
        let (_, ups) = dev
            .post("/v3/service_instances", json!({"type": "user-provided", "name": "db", "relationships": {"space": {"data": {"guid": space}}}}))
            .await;
        let ups = ups["guid"].as_str().expect("ups").to_owned();
        dev.patch(&format!("/v3/service_instances/{ups}"), json!({"name": "db2"})).await;
        let (st, _) =
            dev.send(reqwest::Method::DELETE, &format!("/v3/service_instances/{ups}"), None).await;
        assert!(st.is_success(), "{st}");
        let (_, services) = admin.get("/v3/service_usage_events").await;
        let states: Vec<&str> = services["resources"]
            .as_array()
            .expect("events")
            .iter()
            .filter_map(|e| e["state"].as_str())
            .collect();
        assert_eq!(states, ["CREATED", "UPDATED", "DELETED"], "{services}");
        assert_eq!(
            services["resources"][0]["service_instance"]["type"],
            "user_provided_service_instance"
        );
        assert_eq!(services["resources"][1]["service_instance"]["name"], "db2");

        // Reseed: what runs now; a deleted started app stops.
        dev.post(&format!("/v3/apps/{app}/actions/start"), json!({})).await;
        let (st, _) = dev
            .post("/v3/app_usage_events/actions/destructively_purge_all_and_reseed", json!({}))
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        let (st, _) = admin
            .post("/v3/app_usage_events/actions/destructively_purge_all_and_reseed", json!({}))
            .await;
        assert_eq!(st, StatusCode::OK);
        let (_, seeded) = admin.get("/v3/app_usage_events").await;
        let seeded: Vec<_> = app_states(&seeded).into_iter().filter(|r| r.1 == "web").collect();
        assert_eq!(seeded, [row("STARTED", "web", web(2), Value::Null)]);
        let job = dev.delete_job(&format!("/v3/apps/{app}")).await;
        assert_eq!(job["state"], "COMPLETE");
        let (_, after) = admin.get("/v3/app_usage_events").await;
        assert_eq!(app_states(&after).last().map(|r| r.0.as_str()), Some("STOPPED"), "{after}");
        admin
            .post("/v3/service_usage_events/actions/destructively_purge_all_and_reseed", json!({}))
            .await;
        assert_eq!(admin.get("/v3/service_usage_events").await.1["pagination"]["total_results"], 0);
        p.stop().await;
    }
}
