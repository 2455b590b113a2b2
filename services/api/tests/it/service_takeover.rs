//! Service operations and the apis that run them, on both engines: an api leaves the
//! operations another live api runs alone — at its start and in every round after — and takes
//! over those whose api is gone: an instance's operation is polled to its end by exactly one
//! api, a binding's is failed with what to do.

use std::time::Duration;

use serde_json::{json, Value};
use sqlx::Row as _;
use testkit::{Engine, TestDb};

use crate::brokers::{job, managed, plan_guid, PASSWORD, USER};
use crate::harness::{self, Client};

fn quick(c: &mut api::Config) {
    c.job_heartbeat_ms = 100;
    c.job_stale_ms = 1_000;
    // A stop cuts running jobs off at once (they are failed, their api gone).
    c.drain_secs = 0;
}

/// Jobs written for a resource, by operation.
async fn jobs_of(db: &kit::db::Db, guid: &str) -> Vec<(String, String)> {
    sqlx::query("SELECT operation, state FROM jobs WHERE resource_guid = $1 ORDER BY created_at")
        .bind(guid)
        .fetch_all(&db.pool)
        .await
        .expect("jobs")
        .iter()
        .map(|r| (r.get("operation"), r.get("state")))
        .collect()
}

/// Create a service key of `instance` (answered 202: the broker binds asynchronously); its guid.
async fn start_key(c: &Client, instance: &str, name: &str) -> String {
    let body = json!({"type": "key", "name": name,
        "relationships": {"service_instance": {"data": {"guid": instance}}}});
    let (st, _) = c.post("/v3/service_credential_bindings", body).await;
    assert_eq!(st, 202);
    let (_, keys) = c.get(&format!("/v3/service_credential_bindings?names={name}")).await;
    keys["resources"][0]["guid"].as_str().expect("key guid").to_owned()
}

async fn last_operation(c: &Client, path: &str) -> Value {
    c.get(path).await.1["last_operation"].clone()
}

/// The last operation of the resource at `path` once it is no longer in progress.
async fn settled(c: &Client, path: &str, what: &str) -> Value {
    testkit::eventually(what, Duration::from_secs(20), || async {
        let op = last_operation(c, path).await;
        (op["state"] != "in progress").then_some(op)
    })
    .await
    .expect("settled")
}

#[tokio::test]
async fn a_live_apis_service_operations_are_left_alone_and_taken_over_once_it_is_gone() {
    for engine in Engine::ALL {
        let db = TestDb::new(engine).await.expect("db");
        let conn = db.connect().await.expect("connect");
        let broker = testkit::broker::start(USER, PASSWORD).await;
        let a = harness::start(&db, quick).await;
        let admin_a = Client::new(&a.url, &a.admin_token);
        let (_, space) = crate::push::org_and_space(&admin_a, "takeover").await;
        let reg = json!({"name": "tb", "url": broker, "authentication": {"type": "basic",
            "credentials": {"username": USER, "password": PASSWORD}}});
        let j = job(&admin_a, reqwest::Method::POST, "/v3/service_brokers", Some(reg)).await;
        assert_eq!(j["state"], "COMPLETE", "{j}");
        let mut plans = Vec::new();
        for name in ["async", "slow"] {
            let plan = plan_guid(&admin_a, name).await;
            let path = format!("/v3/service_plans/{plan}/visibility");
            assert_eq!(admin_a.patch(&path, json!({"type": "public"})).await.0, 200);
            plans.push(plan);
        }
        let j = job(
            &admin_a,
            reqwest::Method::POST,
            "/v3/service_instances",
            Some(managed("db", &space, &plans[0])),
        )
        .await;
        assert_eq!(j["state"], "COMPLETE", "{j}");
        let (_, list) = admin_a.get("/v3/service_instances?names=db").await;
        let db_guid = list["resources"][0]["guid"].as_str().expect("guid").to_owned();

        // api a starts a provision the broker takes long to answer, and a key the broker
        // binds asynchronously (a few polls).
        let (st, _) =
            admin_a.post("/v3/service_instances", managed("slow-db", &space, &plans[1])).await;
        assert_eq!(st, 202);
        let (_, list) = admin_a.get("/v3/service_instances?names=slow-db").await;
        let slow = list["resources"][0]["guid"].as_str().expect("guid").to_owned();
        let key = start_key(&admin_a, &db_guid, "k1").await;

        // api b starts beside it, on the same database, and looks every 100 ms.
        let b = harness::start(&db, quick).await;
        let admin_b = Client::new(&b.url, &b.admin_token);
        let key_path = format!("/v3/service_credential_bindings/{key}");
        let op = settled(&admin_b, &key_path, "the key bound").await;
        assert_eq!(op["state"], "succeeded", "{engine:?}: api b failed a's binding: {op}");
        // Well past `job_stale_ms`: the slow provision is still a's alone.
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let slow_path = format!("/v3/service_instances/{slow}");
        assert_eq!(last_operation(&admin_b, &slow_path).await["state"], "in progress");
        assert_eq!(
            jobs_of(&conn, &slow).await,
            [("service_instance.create".to_owned(), "PROCESSING".to_owned())],
            "{engine:?}"
        );

        // A key a leaves half-made when it stops, with the provision.
        let cut = start_key(&admin_a, &db_guid, "k2").await;
        a.stop().await;

        // b takes both over once they have been left for `job_stale_ms`: the provision is
        // polled at the broker (which has the instance) to its end, the key is failed.
        let op = settled(&admin_b, &slow_path, "the provision taken over").await;
        assert_eq!(op["state"], "succeeded", "{engine:?}: {op}");
        let cut_path = format!("/v3/service_credential_bindings/{cut}");
        let op = settled(&admin_b, &cut_path, "the cut key failed").await;
        assert_eq!(op["state"], "failed", "{engine:?}: {op}");
        let why = op["description"].as_str().unwrap_or_default();
        assert!(why.contains("stopped") && why.contains("bind again"), "{why}");
        // Taken over once: a's job (failed by its stop) and one of b's.
        let jobs = jobs_of(&conn, &slow).await;
        assert_eq!(jobs.len(), 2, "{engine:?}: {jobs:?}");
        assert_eq!(jobs[0], ("service_instance.create".to_owned(), "FAILED".to_owned()));
        assert_eq!(jobs[1].0, "service_instance.create");
        // The key a made before is untouched.
        assert_eq!(last_operation(&admin_b, &key_path).await["state"], "succeeded");
        b.stop().await;
    }
}
